"""Conversation evaluators: pure functions that score each turn of a conversation run through the agent.

- relevant_shown: an expected product is among the shown top 5 (turns with relevant_product_ids);
- language_match: the answer is written in the conversation's language (product names and quoted
  queries, which stay in the catalog's English, are left out of the check);
- no_hallucinated_ids: every product id in the turn's answer, shown list and tool result is in the catalog;
- no_hallucinated_prices: every money amount in the answer is the price of a product the turn knew (its results
  and the products on screen), a difference of two, or an amount the shopper or the filters used
  (`shopagent.grounding`);
- intent_match: the understood intent is the expected one (turns with `intent`);
- action_match: what the brain did (search, details, compare, similar, or a chat answer) is what the expected
  intent calls for (turns with `intent`): for the LLM brain, the tool it chose;
- filters_match: the turn searched with the expected filters (turns with `filters`: prices, exclusions, colours).

Besides the per-turn scores, `brain_summary` gives what a run's brain did: answers by the LLM, fallbacks by kind,
tool-call validity, turn latency p50/p95.

Conversations are JSONL, one per line: {"id", "language", "turns": [{"message", "expect": {...}}]};
`query_conversations` makes single-turn ones from the shared queries.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shopagent import grounding
from shopagent.evals.metrics import percentile

TOP_N = 5
EVALUATORS = (
    "relevant_shown",
    "language_match",
    "no_hallucinated_ids",
    "no_hallucinated_prices",
    "intent_match",
    "action_match",
    "filters_match",
)
# What each intent asks the brain to do.
ACTIONS = {"search": "search", "refine": "search", "details": "details", "compare": "compare", "similar": "similar"}
SINGLE_TURN_MESSAGE = "I'm looking for {query}"
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")
# Function and template words of each language (what an answer says around the catalog's names).
_SPANISH_HINT = re.compile(
    r"\b(esto|es|lo|que|qu[eé]|encontr[eé]|para|el|la|los|las|del|de|con|sin|por|menos|m[aá]s|barat[oa]s?|"
    r"mejor|valorad[oa]|valoraci[oó]n|opiniones|categor[ií]a|comparaci[oó]n|parecidos|opciones|variadas|coincide|"
    r"tambi[eé]n|misma|marca|precio|desconocido|nada|siguen|siendo|arriba|cu[aá]l|d[ií]me|a[uú]n|hay|productos?|"
    r"pantalla|primero|buscas|siento|solo|puedo|ayudarte|resultados|afinados|coincidencias|d[eé]biles|pueden|"
    r"servirte|prueba|otras|palabras|filtros|disponibles|similitud|caro)\b|[áéíóúñ¿¡]",
    re.I,
)
_ENGLISH_HINT = re.compile(
    r"\b(the|for|here|what|found|is|are|of|and|with|without|under|over|rating|reviews|colour|category|"
    r"comparison|cheapest|best|rated|similar|matches|also|same|brand|cheaper|more|price|unknown|which|one|"
    r"there|products?|sorry|tell|say|try|words|fewer|filters|nothing|still|couldn't|didn't)\b",
    re.I,
)
KnownIds = Callable[[list[str]], set[str]]


def load_conversations(path: Path) -> list[dict[str, Any]]:
    """The conversations of a JSONL file (blank lines skipped)."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def answer_language(answer: str, names: Iterable[str]) -> str:
    """'es' or 'en' of an answer's own words: product names/brands, quoted queries and highlight lines
    (catalog text, English whatever the conversation) are removed first, then function words are counted."""
    text = "\n".join(line for line in answer.splitlines() if not line.lstrip().startswith("- "))
    for name in sorted((n for n in names if n), key=len, reverse=True):
        text = text.replace(name, " ")
    text = _QUOTED.sub(" ", text)
    return "es" if len(_SPANISH_HINT.findall(text)) > len(_ENGLISH_HINT.findall(text)) else "en"


def query_conversations(
    queries: Mapping[str, str], labels: Mapping[str, Mapping[str, int]], query_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """One single-turn English conversation per query ("I'm looking for <query>"), expecting a search that shows
    one of the query's Exact (grade 3) products; queries without any are skipped."""
    out = []
    for qid in query_ids:
        relevant = sorted(pid for pid, grade in labels.get(qid, {}).items() if grade == 3)
        if relevant and qid in queries:
            message = SINGLE_TURN_MESSAGE.format(query=queries[qid])
            expect = {"relevant_product_ids": relevant, "intent": "search"}
            out.append({"id": f"query-{qid}", "language": "en", "turns": [{"message": message, "expect": expect}]})
    return out


def action(result_kind: str | None) -> str:
    """What a turn did, from the kind of its result: a tool's action, or a chat answer."""
    return ACTIONS.get(result_kind or "", "chat")


def price_problems(turn: Mapping[str, Any]) -> list[float]:
    """Money amounts in the answer that no product the turn knew costs (nor a difference of two, nor an amount
    the shopper or the filters used, nor one quoted from the products' catalog text); the fixed wording of the
    offline templates the answer contains (`fixed_texts`: the greeting's "leather belts under $30") is not a claim."""
    known = grounding.known_products(turn.get("known_products") or [])
    filters = turn.get("filters") or {}
    extra = [float(v) for k in ("price_min", "price_max") if (v := filters.get(k)) is not None]
    extra += grounding.said_amounts(turn["message"])
    extra += turn.get("quoted_amounts") or []
    answer = turn["answer"]
    for fixed in turn.get("fixed_texts") or []:
        answer = answer.replace(fixed, "")
    return grounding.unsupported_prices(answer, grounding.allowed_amounts(known, extra))


def filters_match(expected: dict[str, Any], got: dict[str, Any]) -> bool:
    """The turn searched with the expected filters: numbers equal (None: absent), lists containing the expected
    items (case-insensitive substrings)."""
    for key, want in expected.items():
        have = got.get(key)
        if want is None:
            if have is not None:
                return False
        elif isinstance(want, int | float):
            if have is None or abs(float(have) - float(want)) > 0.005:
                return False
        elif not all(any(str(w).lower() in str(h).lower() for h in have or []) for w in want):
            return False
    return True


def turn_scores(turn: dict[str, Any], expect: dict[str, Any], language: str, known_ids: KnownIds) -> dict[str, Any]:
    """The evaluators on one turn (None: not applicable to this turn)."""
    relevant = expect.get("relevant_product_ids")
    mentioned = set(grounding.PRODUCT_ID.findall(turn["answer"])) | set(turn["shown_ids"]) | set(turn["result_ids"])
    missing = sorted(mentioned - known_ids(sorted(mentioned))) if mentioned else []
    prices = price_problems(turn)
    want_lang = expect.get("language", language)
    intent = expect.get("intent")
    return {
        "relevant_shown": None if not relevant else float(bool(set(relevant) & set(turn["shown_ids"][:TOP_N]))),
        "language_match": float(answer_language(turn["answer"], turn["shown_names"]) == want_lang),
        "no_hallucinated_ids": float(not missing),
        "no_hallucinated_prices": float(not prices),
        "intent_match": None if intent is None else float(turn["intent"] == intent),
        "action_match": None if intent is None else float(turn["action"] == ACTIONS.get(intent, "chat")),
        "filters_match": None if "filters" not in expect else float(filters_match(expect["filters"], turn["filters"])),
        "unknown_ids": missing,
        "unknown_prices": prices,
    }


def score_conversation(
    conversation: dict[str, Any], turns: list[dict[str, Any]], known_ids: KnownIds
) -> list[dict[str, Any]]:
    """Per-turn scores of one conversation's outcome."""
    return [
        turn_scores(t, spec.get("expect") or {}, conversation["language"], known_ids)
        for t, spec in zip(turns, conversation["turns"], strict=True)
    ]


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the applicable (non-None) values."""
    vals = [v for v in values if v is not None]
    return round(sum(vals) / len(vals), 4) if vals else None


def brain_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the brain did over a run's turns: answers written by the LLM, fallbacks by kind, tool calls attempted
    and valid (validated against the tool's schema), and turn latency."""
    calls = [c for r in rows for c in r.get("llm_calls") or []]
    valid = sum(c.get("error") is None for c in calls)
    latencies = [float(r["latency_s"]) for r in rows if r.get("latency_s") is not None]
    return {
        "turns": len(rows),
        "llm_answers": sum(r.get("brain") == "llm" for r in rows),
        "fallbacks": dict(Counter(str(r["llm_fallback"]) for r in rows if r.get("llm_fallback"))),
        "tool_calls": len(calls),
        "tool_calls_valid": valid,
        "tool_call_validity": round(valid / len(calls), 4) if calls else None,
        "call_formats": dict(Counter(str(c.get("format")) for c in calls)),
        "latency_p50_s": round(percentile(latencies, 50), 2) if latencies else None,
        "latency_p95_s": round(percentile(latencies, 95), 2) if latencies else None,
    }


def to_table(report: dict[str, Any]) -> str:
    """A plain-text table of the turns and the means."""

    def cell(value: float | None) -> str:
        """1 / 0 / - for a score."""
        return "-" if value is None else f"{value:g}"

    lines = [
        f"{'conversation':<16}{'#':>2}  {'intent':<13}{'rel':>4}{'lang':>5}{'ids':>4}{'$':>3}{'int':>4}{'act':>4}"
        f"  {'brain':<6}{'fallback':<15}{'s':>6}  message"
    ]
    for r in report["turns"]:
        lines.append(
            f"{r['conversation']:<16}{r['turn']:>2}  {r['intent'] or '-':<13}{cell(r['relevant_shown']):>4}"
            f"{cell(r['language_match']):>5}{cell(r['no_hallucinated_ids']):>4}{cell(r['no_hallucinated_prices']):>3}"
            f"{cell(r['intent_match']):>4}{cell(r['action_match']):>4}  {r['brain'] or '-':<6}"
            f"{r.get('llm_fallback') or '-':<15}{r['latency_s']:>6.1f}  {r['message'][:40]}"
        )
    s = report["summary"]
    lines.append("")
    for key in EVALUATORS:
        lines.append(f"{key:<24} {cell(s[key]):>6}  ({s['turns_scored'][key]} turns)")
    for key, value in s["brain"].items():
        lines.append(f"{key:<24} {value}")
    return "\n".join(lines)


def langsmith_evaluators(known_ids: KnownIds) -> list[Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]]:
    """Conversation-level evaluators (mean over applicable turns) over the target's outputs."""

    def scorer(key: str) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]:
        """An evaluator for one key."""

        def evaluate_key(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> dict[str, Any]:
            """Mean of this key over the conversation's turns."""
            conv = {"language": reference_outputs["language"], "turns": reference_outputs["turns"]}
            scores = score_conversation(conv, outputs["turns"], known_ids)
            return {"key": key, "score": mean(s[key] for s in scores)}

        evaluate_key.__name__ = key
        return evaluate_key

    return [scorer(key) for key in EVALUATORS]
