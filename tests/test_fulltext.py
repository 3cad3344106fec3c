"""The full-text leg whose cost does not grow with the catalog: products matching every term come first, the match
widens only when too few do, filters hold at every step, the rows ranked are bounded (visible in the plan), and the
ranking is as good as ranking every row that matches any term."""

from __future__ import annotations

import pytest

from shopagent.db import catalog, diagnostics
from shopagent.domain import SearchFilters
from shopagent.evals.metrics import ndcg_at_k
from shopagent.services import Services
from shopagent.understanding import parse_search

SLICE_QUERY_IDS = ("q013", "q024", "q008", "q003", "q018")


def _matches(services: Services, ids: list[str], tsquery: str) -> set[str]:
    """Which of `ids` match `tsquery` (a fixed test query)."""
    with services.pool.connection() as conn:
        rows = conn.execute(
            "SELECT id FROM products WHERE id = ANY(%s) AND search_tsv @@ %s::tsquery", (ids, tsquery)
        ).fetchall()
    return {r["id"] for r in rows}


def test_match_levels_from_all_terms_to_any() -> None:
    """Strictest first; "at least m of n" as conjunctions; quotes and backslashes escaped; no lexemes, no levels."""
    assert catalog.match_levels(["water", "bottl", "toddler"]) == [
        "'water' & 'bottl' & 'toddler'",
        "('water' & 'bottl') | ('water' & 'toddler') | ('bottl' & 'toddler')",
        "'water' | 'bottl' | 'toddler'",
    ]
    assert catalog.match_levels(["o'brien", "a\\b"]) == ["'o''brien' & 'a\\\\b'", "'o''brien' | 'a\\\\b'"]
    assert catalog.match_levels(["one"]) == ["'one'"] and catalog.match_levels([]) == []
    long = catalog.match_levels([f"w{i}" for i in range(10)], max_conjunctions=64)
    # all 10, at least 9 (10 conjunctions), 8 (45), then 7 to 3 skipped (120 to 252), 2 (45), any
    assert len(long) == 5 and [level.count("(") for level in long] == [0, 10, 45, 45, 0]
    assert long[0].count("&") == 9 and "|" not in long[0] and long[-1].count("|") == 9


def test_products_with_every_term_come_first(services: Services) -> None:
    """A two-term query: every product matching both terms ranks above any matching only one."""
    with services.pool.connection() as conn:
        hits = catalog.fulltext_search(conn, "women slippers", 60)
    ids = [h["product_id"] for h in hits]
    both = _matches(services, ids, "'women' & 'slipper'")
    assert 0 < len(both) < len(ids), "the slice should hold products with both terms and with one"
    assert set(ids[: len(both)]) == both


def test_enough_all_term_matches_stop_the_widening(services: Services) -> None:
    """When k products match every term, nothing matching fewer terms is ranked at all."""
    with services.pool.connection() as conn:
        hits = catalog.fulltext_search(conn, "women slippers", 5)
    assert len(hits) == 5 and _matches(services, [h["product_id"] for h in hits], "'women' & 'slipper'") == {
        h["product_id"] for h in hits
    }


def test_widens_when_nothing_matches_every_term(services: Services) -> None:
    """A term no product has does not empty the result: the match widens to the others."""
    with services.pool.connection() as conn:
        hits = catalog.fulltext_search(conn, "slippers qwzxv", 10)
    assert len(hits) == 10
    assert _matches(services, [h["product_id"] for h in hits], "'slipper'") == {h["product_id"] for h in hits}


def test_filters_apply_at_every_widening_step(services: Services) -> None:
    """Price and brand filters hold in the widened steps too (and keep what qualifies)."""
    with services.pool.connection() as conn:
        unfiltered = catalog.fulltext_search(conn, "women qwzxv", 50)
        priced = [h for h in unfiltered if h["price"] is not None and h["brand"]]
        assert priced, "the slice should have priced, branded products with the term"
        f = SearchFilters(price_max=priced[0]["price"], brands=(priced[0]["brand"],))
        hits = catalog.fulltext_search(conn, "women qwzxv", 10, f)
    assert priced[0]["product_id"] in {h["product_id"] for h in hits}
    assert all(h["price"] is not None and h["price"] <= f.price_max and h["brand"] == f.brands[0] for h in hits)


def _nodes(node: dict) -> list[dict]:
    """A plan node and all nodes below it."""
    return [node, *(n for child in node.get("Plans", []) for n in _nodes(child))]


def test_ranked_rows_are_bounded(services: Services) -> None:
    """A common term: the scan under the inner Limit stops at `candidates` rows however many match, whether the
    planner reads the table (small here) or the GIN index (large catalogs; forced here)."""
    with services.pool.connection() as conn:
        total = conn.execute("SELECT count(*) AS n FROM products WHERE search_tsv @@ 'women'::tsquery").fetchone()["n"]
        plans = [diagnostics.explain_fulltext_step(conn, "women", 10, candidates=20)]
        with conn.transaction():
            conn.execute("SET LOCAL enable_seqscan = off")
            plans.append(diagnostics.explain_fulltext_step(conn, "women", 10, candidates=20))
    assert total > 40
    for plan in plans:
        inner = [n for n in _nodes(plan) if n["Node Type"] == "Limit"][-1]
        assert inner["Actual Rows"] == 20 and inner["Plans"][0]["Actual Rows"] == 20
    assert any(n.get("Index Name") == "products_search_tsv_gin" for n in _nodes(plans[1]))


def test_document_is_stored_with_the_row(services: Services) -> None:
    """search_tsv is stored MAIN (inline, compressed): ranking a candidate does not fetch it from TOAST."""
    with services.pool.connection() as conn:
        row = conn.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'products'::regclass AND attname = 'search_tsv'"
        ).fetchone()
    assert row["attstorage"] == "m"


@pytest.mark.parametrize("candidates", [None, 1000, 20])
def test_quality_matches_ranking_every_match(
    services: Services, queries: dict[str, str], labels: dict[str, dict[str, int]], candidates: int | None
) -> None:
    """nDCG@10 of full text on the judged slice queries is at least that of the former leg (every row matching
    any term ranked by the same weights), also with a tight candidate bound."""
    texts = {q: parse_search(queries[q]).text for q in SLICE_QUERY_IDS}
    with services.pool.connection() as conn:
        ours = {
            q: [h["product_id"] for h in catalog.fulltext_search(conn, t, 10, candidates=candidates)]
            for q, t in texts.items()
        }
        former = {
            q: [
                r["id"]
                for r in conn.execute(
                    """SELECT id FROM products WHERE search_tsv @@ %(any)s::tsquery
                       ORDER BY ts_rank('{0.1, 0.3, 0.5, 1.0}', search_tsv, %(any)s::tsquery) DESC, id LIMIT 10""",
                    {"any": catalog.match_levels(catalog.query_lexemes(conn, t))[-1]},
                ).fetchall()
            ]
            for q, t in texts.items()
        }
    mean = {
        name: sum(ndcg_at_k(r[q], labels[q], 10) for q in r) / len(r)
        for name, r in (("ours", ours), ("former", former))
    }
    assert mean["ours"] >= mean["former"] - 0.01, mean
