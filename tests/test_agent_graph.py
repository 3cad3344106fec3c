"""Multi-turn conversations through the real graph, the real catalog slice and the Postgres checkpointer."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from langchain_core.messages import HumanMessage
from langgraph.graph.state import CompiledStateGraph

from agent.api.chat import make_checkpointer
from agent.context import Context
from agent.deps import AgentDeps
from agent.graph import build_graph
from agent.state import checkpoint_serde
from shopagent.domain import ProductView, SearchFilters, SearchRequest
from shopagent.matching import name_is_excluded
from shopagent.services import Services
from tests.conftest import run_search
from tools import ProductTools, make_tools
from tools.products import match_reason


@pytest.fixture(scope="module")
def agent_graph(services: Services) -> Iterator[CompiledStateGraph]:
    """The graph compiled with the Postgres checkpointer in the test database."""
    saver, pool = make_checkpointer(services)
    yield build_graph(saver, AgentDeps(services, use_settings_llm=False))
    if pool is not None:
        pool.close()


Turn = Callable[..., dict[str, Any]]


@pytest.fixture
def turn(agent_graph: CompiledStateGraph) -> Turn:
    """Send messages in one fresh conversation; returns the final state of each turn."""
    thread = {"configurable": {"thread_id": uuid.uuid4().hex}}

    def send(message: str, **context: Any) -> dict[str, Any]:
        """One turn."""
        return agent_graph.invoke({"messages": [HumanMessage(message)]}, thread, context=Context(**context))

    return send


def grades(state: dict[str, Any], labels: dict[str, int]) -> list[int]:
    """Judged grades of the products on screen."""
    return [labels.get(p["product_id"], 0) for p in state["shown"]]


def test_english_conversation(turn: Turn, labels: dict[str, dict[str, int]]) -> None:
    """search -> only <brand> -> cheaper -> details -> compare -> similar, each using what was shown."""
    s = turn("hi")
    assert s["intent"] == "greeting" and "find products" in s["answer"]

    s = turn("I'm looking for a toddler water bottle without straw")
    assert s["intent"] == "search" and len(s["shown"]) == 5
    assert 3 in grades(s, labels["q013"])
    assert all(not name_is_excluded(p["name"], ("straw",)) for p in s["shown"])
    assert s["answer"].startswith('Here is what I found for "toddler water bottle" (without straw)')
    first = s["shown"][0]
    assert re.search(rf"1\. {re.escape(first['name'])}.*— \$\d+\.\d\d — matches", s["answer"])

    s = turn("only Home Tune")
    assert s["intent"] == "refine" and s["shown"]
    assert all(p["brand"].lower() == "home tune" for p in s["shown"]), s["shown"]
    assert "brand home tune" in s["answer"] and "without straw" in s["answer"]  # filters accumulate
    shown = s["shown"]
    s = turn("tell me more about the second one")
    assert s["intent"] == "details" and s["answer"].startswith(f"2. {shown[1]['name']}")
    assert "Rating" in s["answer"] and s["shown"] == shown  # the list on screen is unchanged

    s = turn("compare 1 and 2")
    assert s["intent"] == "compare"
    assert shown[0]["name"] in s["answer"] and shown[1]["name"] in s["answer"] and "Cheapest:" in s["answer"]

    prices = [p["price"] for p in shown if p["price"] is not None]
    s = turn("cheaper")
    limit = s["search"].filters.price_max
    assert limit < max(prices)
    assert s["shown"] and all(p["price"] is not None and p["price"] <= limit for p in s["shown"])
    assert all(p["brand"].lower() == "home tune" for p in s["shown"])
    shown = s["shown"]

    s = turn("more like the first one")
    assert s["intent"] == "similar" and s["shown"]
    assert shown[0]["product_id"] not in {p["product_id"] for p in s["shown"]}
    assert s["answer"].startswith(f'Similar to "{shown[0]["name"]}"')
    assert all(p["reason"] for p in s["shown"])


def test_spanish_conversation(turn: Turn, labels: dict[str, dict[str, int]]) -> None:
    """The same flow in Spanish: answers in Spanish, follow-ups understood."""
    s = turn("hola, busco una botella de agua para niños sin pajita")
    assert s["language"] == "es" and s["intent"] == "search"
    assert s["answer"].startswith("Esto es lo que encontré") and "sin straw" in s["answer"]
    assert 3 in grades(s, labels["q013"])
    before = s["shown"]

    s = turn("más barato")
    assert s["intent"] == "refine" and s["answer"].startswith("Resultados afinados")
    assert all(p["price"] is not None and p["price"] <= s["search"].filters.price_max for p in s["shown"])

    shown = s["shown"]
    s = turn("el segundo")
    assert s["intent"] == "details" and "Valoración" in s["answer"] and shown[1]["name"] in s["answer"]

    s = turn("compara el 1 y el 2")
    assert s["answer"].startswith("Comparación") and "El más barato" in s["answer"]

    s = turn("algo parecido al primero")
    assert s["intent"] == "similar" and s["answer"].startswith("Parecidos a") and s["shown"]
    assert before  # (the first list was non-empty)


def test_refinement_that_finds_nothing_keeps_the_list(turn: Turn) -> None:
    """A refinement nothing satisfies says so and leaves the previous list on screen."""
    s = turn("ugg slippers for women")
    shown = s["shown"]
    s = turn("under $0.50")
    assert s["intent"] == "refine" and s["shown"] == shown
    assert s["answer"].startswith('Nothing matches "ugg slippers for women"')


def test_weak_matches_are_called_weaker_not_nothing(turn: Turn) -> None:
    """Nothing above an impossible threshold: the answer offers weaker matches instead of "nothing found"."""
    s = turn("ugg slippers women", strategy="pgvector_primary", pgvector_threshold=0.99, chroma_threshold=0.99)
    assert s["result"]["weak_matches"] and s["shown"]
    assert "weaker matches" in s["answer"] and "couldn't find" not in s["answer"]


def test_out_of_scope_and_help(turn: Turn) -> None:
    """Off-topic questions (by rule or by embedding) get a polite scope answer; help lists what it can do."""
    assert turn("what's the weather like in Paris?")["intent"] == "out_of_scope"
    s = turn("how old are you?")  # no rule matches this one: the embedding check does
    assert s["intent"] == "out_of_scope" and "only help with shopping" in s["answer"]
    assert turn("¿qué puedes hacer?")["answer"].startswith("Puedo: buscar")
    assert turn("which shampoo is good against breakage?")["intent"] == "search"


def test_follow_up_without_products_asks_first(turn: Turn) -> None:
    """Details/compare before any search: asks what the shopper is looking for."""
    s = turn("tell me more about the second one")
    assert s["intent"] == "search" or "no products on screen" in s["answer"]
    s = turn("tresemme shampoo")
    s = turn("tell me more")
    assert s["answer"].startswith("Which one?")


def test_context_k_and_strategy(turn: Turn) -> None:
    """Run context: k and strategy apply to the search."""
    s = turn("tresemme shampoo", k=3, strategy="chroma_primary")
    assert len(s["shown"]) == 3 and s["result"]["strategy"] == "chroma_primary" and s["result"]["backend"] == "chroma"


def test_tools_report_expected_failures(services: Services) -> None:
    """Unknown ids and bad arguments come back as readable results, not exceptions."""
    ops = ProductTools(services)
    assert ops.details(["NOPE"])["status"] == "not_found"
    assert ops.similar("NOPE", 5, 0.6)["message"] == "unknown product id: NOPE"
    assert ops.compare(["NOPE"])["status"] == "error"
    by_name = {t.name: t for t in make_tools(services)}
    assert by_name["product_details"].invoke({"product_ids": ["NOPE"]})["message"] == "unknown product id(s): NOPE"
    assert "max_price" in by_name["search_products"].args and "Search the product catalog" in (
        by_name["search_products"].description
    )
    result = by_name["search_products"].invoke({"query": "zzqx qqzz", "max_price": 0.01})
    assert result["status"] == "no_results" and result["products"] == []


def test_similar_products_are_diverse(services: Services) -> None:
    """MMR with a low lambda picks a different, less redundant set than pure similarity."""
    src = run_search(services, "ugg slippers women").products[0]["product_id"]
    ops = ProductTools(services)
    pure = ops.similar(src, k=5, mmr_lambda=1.0)["products"]
    diverse = ops.similar(src, k=5, mmr_lambda=0.3)["products"]
    assert len(pure) == len(diverse) == 5
    assert [p["product_id"] for p in pure] != [p["product_id"] for p in diverse]
    assert all("shared_terms" in p["why"] for p in diverse)


@pytest.mark.parametrize(
    ("query", "name", "terms"),
    [
        ("headphones wireless", "Wireless Sport Running Headphones, Bluetooth", ["headphones", "wireless"]),
        ("glass jars", "Ball Glass Jar with Lid", ["glass", "jars"]),
        ("dress shoes", "Men's Oxford Dress Shoe", ["dress", "shoes"]),
    ],
)
def test_match_reason_shows_the_shoppers_words(query: str, name: str, terms: list[str]) -> None:
    """Why a product matched names the words as the shopper wrote them: never a stem ("wirele") or a word that
    lost its "ss" ("gla", "dre"); plurals still match singular names."""
    product = cast(ProductView, {"product_id": "B0TEST", "name": name, "brand": None, "price": None})
    assert match_reason(product, query, SearchFilters())["matched_terms"] == terms


def test_checkpoint_serde_allows_the_state_types(services: Services, caplog: pytest.LogCaptureFixture) -> None:
    """The state's own dataclasses come back from a checkpoint without LangGraph's "unregistered type" warning
    (blocked outright under LANGGRAPH_STRICT_MSGPACK), and the API's Postgres checkpointer uses that serializer."""
    state = {"search": SearchRequest("water bottle", SearchFilters(price_max=20.0, brands=("contigo",)), "en")}
    serde = checkpoint_serde()
    with caplog.at_level("WARNING"):
        assert serde.loads_typed(serde.dumps_typed(state)) == state
    assert not [r for r in caplog.records if "unregistered type" in r.getMessage()]
    saver, pool = make_checkpointer(services)
    assert saver is not None and pool is not None
    try:
        assert saver.serde.loads_typed(saver.serde.dumps_typed(state)) == state
        assert not [r for r in caplog.records if "unregistered type" in r.getMessage()]
    finally:
        pool.close()
