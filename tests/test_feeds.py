"""Dirty catalog feeds (issue 9, item 5): each class of fault a scrape or an export leaves, from the value
parsers (property-based with hypothesis: they never raise and never return what the stores cannot hold) to whole
feeds through `shopagent ingest` into a real PostgreSQL and a real Chroma."""

from __future__ import annotations

import copy
import csv
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI_COLLECTION, chroma_mirror, make_settings, read_products, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.embeddings import Embeddings

from shopagent.db import catalog
from shopagent.embeddings.sbert import LocalMiniLMEmbeddings
from shopagent.ingest.fields import PriceRules, parse_price, price_rules
from shopagent.ingest.issues import Issue
from shopagent.ingest.mapping import load_mapping
from shopagent.ingest.pipeline import ingest
from shopagent.ingest.reader import FIELDS, RowRejected, normalise, read_catalog
from shopagent.services import prepare_database
from shopagent.settings import PROJECT_ROOT, get_settings

RULES = PriceRules()
_BAD_CHARS = "\x00\x01\x08\x0b\x1b\x7f\x85\x9f"


@pytest.fixture(scope="module")
def products() -> list[dict[str, Any]]:
    """The sample catalog's raw records."""
    return read_products()


# ---------------------------------------------------------------- prices


@pytest.mark.parametrize(
    ("value", "expected", "reason"),
    [
        ("25,50", 25.5, None),
        ("1.299,00", 1299.0, None),
        ("$1,299.00", 1299.0, None),
        ("EUR 12,99", 12.99, None),
        ("12,99 €", 12.99, None),
        ("1 299,00", 1299.0, None),
        ("USD 7", 7.0, None),
        (19.999, 20.0, None),
        (Decimal("4.50"), 4.5, None),
        ("0", 0.0, None),
        ("-5", None, "price_negative"),
        (-5, None, "price_negative"),
        ("$-5.00", None, "price_negative"),
        ("\u22125", None, "price_negative"),
        ("(5.00)", None, "price_negative"),
        ("Infinity", None, "price_not_finite"),
        ("-inf", None, "price_not_finite"),
        ("NaN", None, "price_not_finite"),
        (math.nan, None, "price_not_finite"),
        (math.inf, None, "price_not_finite"),
        (Decimal("NaN"), None, "price_not_finite"),
        ("1e12", None, "price_out_of_range"),
        (1e12, None, "price_out_of_range"),
        ("2.5E3", 2500.0, None),
        ("call us", None, "price_unparseable"),
        (True, None, "price_unparseable"),
        ([12], None, "price_unparseable"),
        ({"amount": 3}, None, "price_unparseable"),
        ("", None, None),
        (None, None, None),
    ],
)
def test_price_class(value: Any, expected: float | None, reason: str | None) -> None:
    """Decimal commas, thousands separators, currency symbols and codes parse; negatives, infinities, NaN, absurd
    amounts and non-prices become None with the reason."""
    issues: list[Issue] = []
    assert parse_price(value, RULES, issues) == expected
    assert [i.reason for i in issues] == ([reason] if reason else [])
    assert all(i.action == "nulled" and i.field == "price" for i in issues)


def test_price_locale_and_currency() -> None:
    """An ambiguous "1.299" follows the feed's locale; a price in another currency than the feed's is nulled;
    unknown locales and currencies are refused up front."""
    german, american = price_rules("de_DE", "EUR", 1e6), price_rules("en-US", "USD", 1e6)
    assert (german.decimal_separator, american.decimal_separator) == (",", ".")
    for rules, text, expected in [
        (german, "1.299", 1299.0),
        (german, "1,299", 1.3),
        (american, "1,299", 1299.0),
        (american, "US$ 5", 5.0),
        (german, "12,99 EUR", 12.99),
    ]:
        assert parse_price(text, rules, []) == expected, (rules, text)
    for rules, text in [(german, "$12.99"), (german, "USD 5"), (american, "EUR 5"), (american, "CA$ 5")]:
        issues: list[Issue] = []
        assert parse_price(text, rules, issues) is None and issues[0].reason == "price_currency_mismatch"
    with pytest.raises(ValueError, match="locale"):
        price_rules("xx_QQ", None, 1e6)
    with pytest.raises(ValueError, match="currency"):
        price_rules(None, "QQQ", 1e6)


_PRICE_TEXT = st.text(alphabet="0123456789.,-+ $€£eEinfINFaN()\u2212\u00a0USDEUR", max_size=24)
_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    _PRICE_TEXT,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_ANY_VALUE, rules=st.sampled_from([RULES, price_rules("de_DE", "EUR", 5000.0)]))
def test_price_parser_never_raises_and_returns_a_storable_price(value: Any, rules: PriceRules) -> None:
    """Whatever a feed holds, the price is None or a finite amount in [0, max_price] with at most 2 decimals."""
    issues: list[Issue] = []
    price = parse_price(value, rules, issues)
    assert price is None or (math.isfinite(price) and 0 <= price <= rules.max_price and round(price, 2) == price)
    assert len(issues) <= 1


# ---------------------------------------------------------------- rows

_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=20) | st.sampled_from(
    ["a\x00b", "\udcff socks", "\x1b[31mred", "ok"]
)
_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.decimals(), _TEXT)
_JSONISH = st.recursive(_LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3))
_KEYS = st.sampled_from([*FIELDS, "id", "title", "image", "extra", "\x00key"])


def _storable(text: str) -> bool:
    """Text PostgreSQL, Chroma and JSON can hold: no C0/C1 controls (bar tab/newlines), no lone surrogates."""
    return not any(
        (ord(c) < 32 and c not in "\t\n\r") or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in text
    )


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value (keys too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [*_strings(k), *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.dictionaries(_KEYS, _JSONISH, max_size=10))
def test_row_parser_never_raises_and_returns_storable_values(raw: dict[str, Any]) -> None:
    """Any record either is rejected (RowRejected, with a reason) or becomes a row whose every string is
    storable, whose numbers are finite and in range, and whose attributes are strict JSON."""
    issues: list[Issue] = []
    try:
        row = normalise(raw, "m", RULES, issues)
    except RowRejected as exc:
        assert exc.issue.action == "rejected" and exc.issue.reason in ("missing_id", "bad_id")
        return
    texts = [row.id, row.name, row.description, row.brand or "", row.color or "", row.image_url or ""]
    assert all(_storable(t) for t in [*texts, *row.bullet_points, *row.category, *_strings(row.attributes)])
    assert row.id and row.id == row.id.strip()
    assert row.price is None or (math.isfinite(row.price) and 0 <= row.price <= RULES.max_price)
    assert row.rating is None or 0 <= row.rating <= 5
    assert row.rating_count is None or (isinstance(row.rating_count, int) and 0 <= row.rating_count < 2**31)
    json.dumps(row.attributes, allow_nan=False)
    assert all(i.action in ("repaired", "nulled") for i in issues)


def test_wrong_types_and_out_of_range_values() -> None:
    """A list where text is expected is joined, a number as a name is text, an object as a brand is dropped;
    ratings and counts out of range, unknown booleans and unsafe image URLs become NULL / the default, each with
    its reason; NUL and lone surrogates are removed or replaced everywhere, attributes included."""
    issues: list[Issue] = []
    row = normalise(
        {
            "product_id": "p\x00-1",
            "name": 12345,
            "description": ["Great", "mug", 2],
            "brand": {"name": "X"},
            "color": "re\x00d\udcff",
            "category": ["Kitchen", {"bad": 1}, 3, None],
            "rating": 7,
            "rating_count": -3,
            "in_stock": "maybe",
            "image": "javascript:alert(1)",
            "attributes": {"size\x00": "XL\x00", "weight": math.nan},
        },
        "m",
        RULES,
        issues,
    )
    assert (row.id, row.name, row.description, row.brand) == ("p-1", "12345", "Great mug 2", None)
    assert row.color == "red\ufffd" and row.category == ["Kitchen", "3"]
    assert (row.rating, row.rating_count, row.in_stock, row.image_url) == (None, None, True, None)
    assert row.attributes == {"size": "XL", "weight": None}
    reasons = {(i.field, i.reason) for i in issues}
    assert {
        ("name", "coerced_type"),
        ("description", "coerced_type"),
        ("brand", "wrong_type"),
        ("color", "control_characters"),
        ("color", "invalid_unicode"),
        ("category", "wrong_type"),
        ("rating", "number_out_of_range"),
        ("rating_count", "number_out_of_range"),
        ("in_stock", "bool_unparseable"),
        ("image_url", "url_invalid"),
        ("attributes", "control_characters"),
        ("attributes", "number_unparseable"),
    } <= reasons
    counts = normalise({"id": 7, "rating": "4,5", "rating_count": "1,234", "price": "9,99"}, "m")
    assert (counts.id, counts.rating, counts.rating_count, counts.price) == ("7", 4.5, 1234, 9.99)
    for bad in ({"product_id": ["a"]}, {"product_id": True}, {"product_id": 1.5}, {"id": " \x00 "}, {}):
        with pytest.raises(RowRejected):
            normalise(bad, "m")


def test_malformed_lines_are_records_not_exceptions(tmp_path: Path) -> None:
    """JSONL: invalid JSON, a non-object, invalid UTF-8 bytes and a BOM; CSV: too many or too few fields, NUL,
    a BOM before the header. Each bad line is one record carrying why; the good ones read normally."""
    jsonl = tmp_path / "feed.jsonl"
    jsonl.write_bytes(
        b'\xef\xbb\xbf{"product_id": "a", "name": "A"}\n{not json\n[1, 2]\n\n'
        b'{"product_id": "b", "name": "caf\xe9"}\n{"product_id": "c", "name": "C\\u0000"}\n'
    )
    got = list(read_catalog(jsonl))
    assert [(r.where, r.data is not None) for r in got] == [
        ("line 1", True),
        ("line 2", False),
        ("line 3", False),
        ("line 5", True),
        ("line 6", True),
    ]
    assert [i.reason for r in got for i in r.issues] == ["malformed_json", "not_an_object", "invalid_unicode"]
    assert got[0].data == {"product_id": "a", "name": "A"} and got[3].data["name"] == "caf\ufffd"
    assert got[1].raw == "{not json\n"

    path = tmp_path / "feed.csv"
    path.write_bytes('\ufeffproduct_id,name,price\n1,Mug,"25,50"\n2,Cup,3,surplus\n3\n4,Pl\x00ate,4\n'.encode("utf-8"))
    rows = list(read_catalog(path))
    assert [r.data["product_id"] if r.data else None for r in rows] == ["1", None, None, "4"]
    assert [i.detail for r in rows for i in r.issues] == ["4 fields, the header has 3", "1 fields, the header has 3"]
    assert normalise(rows[0].data, "m").price == 25.5 and normalise(rows[3].data, "m").name == "Plate"


def test_column_mapping(tmp_path: Path) -> None:
    """TOML [columns] then --map options (which win); unknown fields are refused naming the valid ones."""
    toml = tmp_path / "map.toml"
    toml.write_text('[columns]\nproduct_id = "sku"\nname = "title_en"\nprice = "cost"\n', encoding="utf-8")
    mapping = load_mapping(toml, ["price=unit_price"])
    assert mapping.apply({"sku": "S1", "title_en": "Mug", "cost": 1, "unit_price": 2, "x": 3}) == {
        "cost": 1,
        "x": 3,
        "product_id": "S1",
        "name": "Mug",
        "price": 2,
    }
    with pytest.raises(ValueError, match="valid: product_id"):
        load_mapping(None, ["colour=c"])
    with pytest.raises(ValueError, match="FIELD=COLUMN"):
        load_mapping(None, ["name"])


# ---------------------------------------------------------------- whole feeds, both stores


def _stores(dsn: str, tmp_path: Path, embeddings: Embeddings) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """(PostgreSQL rows by id, Chroma ids) after a run."""
    settings = make_settings(dsn, tmp_path / "chroma")
    with prepare_database(settings, embeddings, dsn) as conn:
        rows = {r["id"]: r for r in catalog.get_products(conn, catalog.all_product_ids(conn))}
    store = chroma_mirror(settings.model_copy(update={"chroma_collection": CLI_COLLECTION}), embeddings).store
    return rows, set(store.iter_ids())


def test_dirty_jsonl_feed_end_to_end(cli_env, tmp_path: Path, embeddings, products) -> None:
    """One batch of 16 real products with every dirty class mixed in, plus malformed lines: nothing is fatal,
    no clean neighbour is lost, every rejected or repaired row is in the summary and the rejects file by id, the
    exit status says rows were rejected, and both stores end with the same products."""
    good = copy.deepcopy(products[:10])
    good[0]["name"] += "\x00 with NUL"
    good[1]["description"] = "lone surrogate \udcff here"
    good[2]["price"] = "-5"
    good[3]["price"] = "Infinity"
    good[4]["price"] = "1e12"
    good[5]["price"] = "25,50"
    good[6]["price"] = "1.299,00"
    good[7]["rating"], good[7]["rating_count"] = 9.5, -1
    good[8]["name"], good[8]["brand"] = ["Two", "parts"], 42
    good[9]["bullet_points"] = "not | a | list"
    feed = tmp_path / "dirty.jsonl"
    lines = [json.dumps(r) for r in good] + ["{broken", '"a string"', json.dumps({"name": "no id"})]
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects, summary_path = tmp_path / "rejects.jsonl", tmp_path / "summary.json"
    code, out = run_cli(
        "ingest", "--catalog", str(feed), "--stores", "pgvector,chroma", "--batch-size", "16",
        "--rejects", str(rejects), "--summary-json", str(summary_path), "--json", "--quiet",
    )  # fmt: skip
    assert code == 1, out
    summary = json.loads(out)
    assert (summary["read"], summary["inserted"], summary["rejected"], summary["errors"]) == (13, 10, 3, 0)
    assert summary["repaired"] == 7 and summary["unidentified"] == 3
    assert summary["issues"] == {
        "coerced_type": 2,
        "control_characters": 1,
        "invalid_unicode": 1,
        "price_negative": 1,
        "price_not_finite": 1,
        "price_out_of_range": 1,
        "number_out_of_range": 2,
        "malformed_json": 1,
        "not_an_object": 1,
        "missing_id": 1,
    }
    written = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    repaired_ids = {good[i]["product_id"] for i in (0, 1, 2, 3, 4, 7, 8)}
    assert len(written) == 10 and {w["id"] for w in written if w["id"]} == repaired_ids
    assert [w["where"] for w in written if w["action"] == "rejected"] == ["line 11", "line 12", "line 13"]
    assert json.loads(summary_path.read_text())["status"] == "rows_failed"

    rows, chroma_ids = _stores(cli_env, tmp_path, embeddings)
    assert set(rows) == chroma_ids == {p["product_id"] for p in good}
    by = [rows[p["product_id"]] for p in good]
    assert "\x00" not in by[0]["name"] and by[0]["name"].endswith(" with NUL")
    assert by[1]["description"] == "lone surrogate \ufffd here"
    assert [by[i]["price"] for i in (2, 3, 4)] == [None, None, None]
    assert (float(by[5]["price"]), float(by[6]["price"])) == (25.5, 1299.0)
    assert (by[7]["rating"], by[7]["rating_count"]) == (None, None)
    assert (by[8]["name"], by[8]["brand"], by[9]["bullet_points"]) == ("Two parts", "42", ["not", "a", "list"])


def test_dirty_csv_feed_with_locale_and_currency(cli_env, tmp_path: Path, embeddings) -> None:
    """A German CSV export: decimal commas, thousands dots, euro signs, a dollar price (nulled), a BOM, a short
    row (rejected); read with --price-locale de_DE --currency EUR."""
    path = tmp_path / "export.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(["product_id", "name", "price", "in_stock"])
        writer.writerows(
            [
                ["d1", "Kaffeebecher", "1.299", "ja"],
                ["d2", "Teekanne", "12,99 €", "yes"],
                ["d3", "Teller", "$4.50", "no"],
                ["d4"],
            ]
        )
    code, out = run_cli(
        "ingest", "--catalog", str(path), "--price-locale", "de_DE", "--currency", "EUR", "--json", "--quiet"
    )
    summary = json.loads(out)
    assert code == 1 and summary["rejected"] == 1 and summary["issues"]["price_currency_mismatch"] == 1
    assert summary["issues"]["bool_unparseable"] == 1  # "ja": not a spelling we know, so the default (in stock)
    rows, _ = _stores(cli_env, tmp_path, embeddings)
    assert {k: (float(v["price"]) if v["price"] is not None else None) for k, v in rows.items()} == {
        "d1": 1299.0,
        "d2": 12.99,
        "d3": None,
    }
    assert run_cli("ingest", "--catalog", str(path), "--price-locale", "xx_QQ", "--quiet")[0] == 2


def test_a_batch_postgres_refuses_is_written_row_by_row(cli_env, tmp_path: Path, embeddings, products, monkeypatch):
    """With FEED_MAX_PRICE raised past the column's range, one price overflows numeric(12,2): PostgreSQL refuses
    the whole batch, which is then written row by row; only that row is rejected (by id, with the database's
    reason), its 15 neighbours are stored, and Chroma holds exactly what PostgreSQL committed."""
    monkeypatch.setenv("FEED_MAX_PRICE", "1e15")
    get_settings.cache_clear()
    records = copy.deepcopy(products[:16])
    records[7]["price"] = 1e12
    feed = tmp_path / "overflow.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    code, out = run_cli("ingest", "--catalog", str(feed), "--stores", "pgvector,chroma", "--json", "--quiet")
    summary = json.loads(out)
    assert code == 1 and summary["rejected"] == 1 and summary["inserted"] == 15
    sample = summary["row_samples"][0]
    assert sample["id"] == records[7]["product_id"] and sample["issues"][0]["reason"] == "database_rejected"
    assert "numeric field overflow" in sample["issues"][0]["detail"]
    rows, chroma_ids = _stores(cli_env, tmp_path, embeddings)
    assert set(rows) == chroma_ids == {p["product_id"] for i, p in enumerate(records) if i != 7}


class BrokenVectors(Embeddings):
    """The real model, except that texts containing ZERO embed to zeros and texts containing NAN to NaNs."""

    def __init__(self, inner: LocalMiniLMEmbeddings):
        """Wrap the real model."""
        self.inner, self.model_name, self.dimension = inner, inner.model_name, inner.dimension

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed, breaking the marked texts' vectors."""
        out = self.inner.embed_documents(texts)
        for i, text in enumerate(texts):
            if "ZERO" in text:
                out[i] = [0.0] * self.dimension
            elif "NAN" in text:
                out[i] = [math.nan] * self.dimension
        return out

    def embed_query(self, text: str) -> list[float]:
        """Queries are fine."""
        return self.inner.embed_query(text)


def test_unusable_vectors_from_the_model_are_refused_by_id(make_database, tmp_path, embeddings, products) -> None:
    """Zero and NaN vectors from the model are errors by id, never stored in either store; the rows are kept
    without a vector (stale, retried next run) and the rest of the batch is embedded."""
    settings = make_settings(make_database(), tmp_path / "chroma")
    records = copy.deepcopy(products[:6])
    records[1]["name"], records[4]["name"] = "ZERO " + records[1]["name"], "NAN " + records[4]["name"]
    with prepare_database(settings, embeddings) as conn:
        mirror = chroma_mirror(settings, embeddings)
        summary = ingest(conn, BrokenVectors(embeddings), embeddings.model_name, records, mirror=mirror)
        assert summary.errors == 2 and summary.failed_ids == [records[1]["product_id"], records[4]["product_id"]]
        assert summary.embedded == 4 and summary.inserted == 6
        assert "all zeros" in summary.error_samples[0] and "non-finite" in summary.error_samples[1]
        assert catalog.coverage(conn)["missing"] == 2
        assert set(catalog.get_embeddings(conn, [r["product_id"] for r in records])) == set(mirror.store.iter_ids())
        assert len(mirror.store.iter_ids()) == 4


def test_dirty_feed_script_output_reads_without_a_crash(tmp_path: Path, products, monkeypatch) -> None:
    """scripts/make_dirty_feed.py's faults, read and normalised: only the three lines without a usable object or
    id are rejected; every other record becomes a row."""
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "scripts"))
    import make_dirty_feed

    lines, injected = make_dirty_feed.dirty(products[:300], 0.5, 3)
    path = tmp_path / "dirty.jsonl"
    path.write_bytes(b"".join(lines))
    rejected, rows = 0, 0
    for rec in read_catalog(path):
        if rec.data is None:
            rejected += 1
            continue
        try:
            normalise(rec.data, "m")
            rows += 1
        except RowRejected:
            rejected += 1
    assert (rejected, rows) == (3, 302) and sum(injected.values()) == 150 + 5
