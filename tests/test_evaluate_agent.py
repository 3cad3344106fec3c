"""`shopagent evaluate-agent`'s core (agent.evaluation + shopagent.evals.conversations) over the test slice:
real graph, real search, real catalog checks.

The evaluators must be able to fail: a product that is not shown, an answer in the wrong language and an
id that is not in the catalog each score 0."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent import evaluation
from agent.context import Context
from shopagent.evals import conversations as scoring
from shopagent.services import Services
from shopagent.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def evaluate_agent() -> SimpleNamespace:
    """The runner and the evaluators, under one name."""
    return SimpleNamespace(**{**vars(scoring), **vars(evaluation)})


def grade3(labels: dict[str, dict[str, int]], qid: str) -> list[str]:
    """The query's Exact (grade 3) products."""
    return sorted(pid for pid, grade in labels[qid].items() if grade == 3)


@pytest.fixture
def conversations(queries: dict[str, str], labels: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """Two small conversations over shared queries whose products are in the slice (en and es)."""
    return [
        {
            "id": "bottle-en",
            "language": "en",
            "turns": [
                {
                    "message": queries["q013"],
                    "expect": {"relevant_product_ids": grade3(labels, "q013"), "intent": "search"},
                },
                {"message": "tell me more about the first one", "expect": {"intent": "details"}},
            ],
        },
        {
            "id": "ugg-es",
            "language": "es",
            "turns": [
                {
                    "message": "busco pantuflas ugg para mujer",
                    "expect": {"relevant_product_ids": grade3(labels, "q024"), "intent": "search"},
                },
                {"message": "compara el 1 y el 2", "expect": {"intent": "compare"}},
            ],
        },
    ]


def test_conversations_are_scored(
    evaluate_agent: SimpleNamespace, services: Services, conversations: list[dict[str, Any]]
) -> None:
    """Every evaluator is computed per turn, per conversation and overall; these conversations pass."""
    report = evaluate_agent.evaluate_local(services, conversations, Context())
    rows = report["turns"]
    assert [(r["conversation"], r["intent"]) for r in rows] == [
        ("bottle-en", "search"),
        ("bottle-en", "details"),
        ("ugg-es", "search"),
        ("ugg-es", "compare"),
    ]
    assert [r["relevant_shown"] for r in rows] == [1.0, None, 1.0, None]
    assert all(r["language_match"] == r["no_hallucinated_ids"] == r["no_hallucinated_prices"] == 1.0 for r in rows)
    assert all(r["intent_match"] == r["action_match"] == 1.0 for r in rows)
    assert [r["action"] for r in rows] == ["search", "details", "search", "compare"]
    assert all(r["brain"] == "rules" and r["latency_s"] > 0 and r["known_products"] for r in rows)
    assert len(rows[0]["shown_ids"]) == 5 and len(rows[1]["result_ids"]) == 1 and len(rows[3]["result_ids"]) == 2
    assert rows[3]["answer"].startswith("Comparación")
    assert report["summary"]["turns_scored"] == {
        "relevant_shown": 2,
        "language_match": 4,
        "no_hallucinated_ids": 4,
        "no_hallucinated_prices": 4,
        "intent_match": 4,
        "action_match": 4,
        "filters_match": 0,
    }
    brain = report["summary"]["brain"]
    assert brain["turns"] == 4 and brain["llm_answers"] == 0 and brain["tool_calls"] == 0
    assert brain["fallbacks"] == {} and brain["tool_call_validity"] is None
    assert 0 < brain["latency_p50_s"] <= brain["latency_p95_s"]
    assert report["conversations"]["ugg-es"]["relevant_shown"] == 1.0
    table = evaluate_agent.to_table(report)
    assert "ugg-es" in table and "relevant_shown" in table


def test_evaluators_can_fail(
    evaluate_agent: SimpleNamespace, services: Services, conversations: list[dict[str, Any]], labels
) -> None:
    """A product that is not shown, a wrong language, a wrong intent each score 0 (and lower the means)."""
    bottle, ugg = conversations
    bottle["turns"][0]["expect"]["relevant_product_ids"] = grade3(labels, "q024")  # slippers for a bottle query
    bottle["turns"][1]["expect"]["intent"] = "compare"
    ugg["language"] = "en"  # its answers are in Spanish
    report = evaluate_agent.evaluate_local(services, conversations, Context())
    rows = report["turns"]
    assert rows[0]["relevant_shown"] == 0.0 and rows[2]["relevant_shown"] == 1.0
    assert rows[1]["intent_match"] == 0.0
    assert [r["language_match"] for r in rows] == [1.0, 1.0, 0.0, 0.0]
    assert report["summary"]["relevant_shown"] == 0.5 and report["summary"]["language_match"] == 0.5
    assert report["conversations"]["bottle-en"]["intent_match"] == 0.5


def test_hallucinated_ids_are_caught(evaluate_agent: SimpleNamespace, services: Services, labels) -> None:
    """Ids in the answer text or lists that the catalog does not hold fail the check; real ones pass."""
    known = evaluate_agent.catalog_checker(services)
    real = next(pid for pid in grade3(labels, "q013") if known([pid]))
    turn = {
        "answer": f"Try {real} or B0FAKE0000.",
        "shown_ids": [real],
        "result_ids": [],
        "shown_names": [],
        "intent": "search",
    }
    turn |= {"message": "water bottle under 20 dollars", "action": "search", "filters": {}}
    turn["known_products"] = [{"product_id": real, "name": "Kids Water Bottle", "price": 14.0}]
    scores = evaluate_agent.turn_scores(turn, {}, "en", known)
    assert scores["no_hallucinated_ids"] == 0.0 and scores["unknown_ids"] == ["B0FAKE0000"]
    turn["answer"] = f"Try {real}, $14.00 (under $20)."
    scores = evaluate_agent.turn_scores(turn, {}, "en", known)
    assert scores["no_hallucinated_ids"] == scores["no_hallucinated_prices"] == 1.0
    turn["answer"] = "Try the Kids Water Bottle at $12.99."
    scores = evaluate_agent.turn_scores(turn, {}, "en", known)
    assert scores["no_hallucinated_prices"] == 0.0 and scores["unknown_prices"] == [12.99]


def test_quoted_and_template_amounts_are_not_hallucinated(evaluate_agent: SimpleNamespace, services: Services) -> None:
    """A details answer quoting a bullet ("up to a $219 value") and the greeting's example ("under $30") state no
    made-up price, as the offline runs found; the same amounts elsewhere in an answer still fail."""
    conversation = {
        "id": "quotes",
        "language": "en",
        "turns": [{"message": "hi", "expect": {"intent": "greeting"}}],
    }
    row = evaluate_agent.evaluate_local(services, [conversation], Context())["turns"][0]
    assert "$30" in row["answer"] and row["fixed_texts"] and row["no_hallucinated_prices"] == 1.0
    known = evaluate_agent.catalog_checker(services)
    turn = {"message": "tell me more about the first one", "intent": "details", "action": "details", "filters": {}}
    turn |= {"shown_ids": [], "result_ids": [], "shown_names": []}
    turn["known_products"] = [{"product_id": "B07NMXMTWM", "name": "Kindle Kids", "price": None}]
    turn["answer"] = "1. Kindle Kids - price unknown.\n- a 2-year guarantee - up to a $219 value."
    assert evaluate_agent.turn_scores(turn, {}, "en", known)["unknown_prices"] == [219.0]
    turn["quoted_amounts"] = [219.0]
    assert evaluate_agent.turn_scores(turn, {}, "en", known)["no_hallucinated_prices"] == 1.0
    turn["answer"] = "Leather belts under $30: 1. Kindle Kids."
    assert evaluate_agent.turn_scores(turn, {}, "en", known)["unknown_prices"] == [30.0]


def test_single_turn_queries_and_brain_summary(evaluate_agent: SimpleNamespace, queries, labels) -> None:
    """Dev-split queries become "I'm looking for <query>" conversations expecting an Exact product; the brain
    summary counts LLM answers, fallbacks by kind and valid tool calls."""
    convs = evaluate_agent.query_conversations(queries, labels, ["q013", "q999"])
    assert [c["id"] for c in convs] == ["query-q013"]
    (turn,) = convs[0]["turns"]
    assert turn["message"] == f"I'm looking for {queries['q013']}"
    assert turn["expect"] == {"relevant_product_ids": grade3(labels, "q013"), "intent": "search"}
    call = {"round": 1, "tool": "search_products", "args": {}, "format": "json_fenced", "error": None}
    rows = [
        {"brain": "llm", "llm_fallback": None, "llm_calls": [call], "latency_s": 10.0},
        {"brain": "rules", "llm_fallback": "no_answer", "llm_calls": [call, {**call, "error": "x"}], "latency_s": 30.0},
        {"brain": "rules", "llm_fallback": "malformed_call", "llm_calls": [{**call, "error": "y"}], "latency_s": 20.0},
    ]
    summary = evaluate_agent.brain_summary(rows)
    assert summary["llm_answers"] == 1 and summary["fallbacks"] == {"no_answer": 1, "malformed_call": 1}
    assert (summary["tool_calls"], summary["tool_calls_valid"], summary["tool_call_validity"]) == (4, 2, 0.5)
    assert summary["latency_p50_s"] == 20.0 and summary["call_formats"] == {"json_fenced": 4}


def test_answer_language(evaluate_agent: SimpleNamespace) -> None:
    """The language check ignores catalog names and quoted queries, which stay English in Spanish answers."""
    name = "UGG Women's Fluff Yeah Slide Slipper, Black, 8"
    names = [name, "UGG"]
    es = f'Esto es lo que encontré para "ugg slippers for women":\n1. {name} (UGG)'
    en = f'Here is what I found for "pantuflas para mujer":\n1. {name} (UGG)'
    assert evaluate_agent.answer_language(es, names) == "es"
    assert evaluate_agent.answer_language(en, names) == "en"


def test_shipped_conversations_are_well_formed(evaluate_agent: SimpleNamespace, labels) -> None:
    """data/eval/conversations.jsonl: ~22 en/es conversations; expected products are real, judged Exact."""
    path: Path = PROJECT_ROOT / "data" / "eval" / "conversations.jsonl"
    convs = evaluate_agent.load_conversations(path)
    assert len(convs) >= 10 and {c["language"] for c in convs} == {"en", "es"}
    exact = {pid for judged in labels.values() for pid, grade in judged.items() if grade == 3}
    for conv in convs:
        for turn in conv["turns"]:
            assert set(turn["expect"]) <= {"relevant_product_ids", "intent", "language", "filters"}, json.dumps(turn)
            assert set(turn["expect"].get("relevant_product_ids", [])) <= exact


def test_filters_match_checks_what_the_turn_searched_with(evaluate_agent: SimpleNamespace) -> None:
    """The filters evaluator: numbers equal or absent (None), listed values contained, case-insensitive."""
    match = evaluate_agent.filters_match
    got = {"price_max": 15.0, "exclude_terms": ["Stainless Steel"], "exclude_colors": ["black"]}
    assert match({"price_max": 15, "exclude_terms": ["stainless"], "price_min": None}, got)
    assert not match({"price_max": 20}, got) and not match({"price_min": 5}, got)
    assert not match({"exclude_colors": ["white"]}, got) and not match({"price_max": None}, got)
