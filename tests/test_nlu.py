"""Deterministic understanding: intents, references and follow-up filters in English and Spanish (no I/O)."""

from __future__ import annotations

import pytest

from shopagent.understanding import Vocabulary, understand
from shopagent.understanding.intent import references

VOCAB = Vocabulary(frozenset({"nike", "ugg", "home tune"}), frozenset({"shoes", "belts", "slippers"}))
SHOWN = [{"product_id": "a", "price": 20.0}, {"product_id": "b", "price": 40.0}, {"product_id": "c", "price": None}]


@pytest.mark.parametrize(
    ("text", "intent", "language"),
    [
        ("hi", "greeting", "en"),
        ("hola", "greeting", "es"),
        ("what can you do?", "help", "en"),
        ("¿qué puedes hacer?", "help", "es"),
        ("what's the weather today?", "out_of_scope", "en"),
        ("cuéntame un chiste", "out_of_scope", "es"),
        ("tell me more about the second one", "details", "en"),
        ("el segundo", "details", "es"),
        ("the last one", "details", "en"),
        ("compare 1 and 3", "compare", "en"),
        ("compara el primero y el tercero", "compare", "es"),
        ("more like the first one", "similar", "en"),
        ("algo parecido al primero", "similar", "es"),
        ("cheaper", "refine", "en"),
        ("más barato", "refine", "es"),
        ("only Nike", "refine", "en"),
        ("in red", "refine", "en"),
        ("without laces", "refine", "en"),
        ("sin cordones", "refine", "es"),
        ("I'm looking for leather belts without buckles", "search", "en"),
        ("busco zapatos rojos sin cordones", "search", "es"),
    ],
)
def test_intents_with_products_on_screen(text: str, intent: str, language: str) -> None:
    """Each phrasing maps to its intent and language."""
    u = understand(text, VOCAB, SHOWN)
    assert (u.intent, u.language) == (intent, language)


def test_follow_ups_need_products_on_screen() -> None:
    """Without a previous list, "cheaper" or "the second one" are just searches."""
    assert understand("cheaper", VOCAB, []).intent == "search"
    assert understand("compare 1 and 3", VOCAB, []).intent == "search"


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("compare 1 and 3", [0, 2]),
        ("the second one", [1]),
        ("el tercero y el primero", [2, 0]),
        ("the last one", [2]),
        ("#2 under $30", [1]),
        ("compare 1 and 9", [0]),
    ],
)
def test_references(text: str, refs: list[int]) -> None:
    """Ordinals, numbers and "last" resolve to positions; prices and out-of-range numbers don't."""
    assert references(text, len(SHOWN)) == refs


def test_refinement_filters() -> None:
    """Follow-ups become filters: cheaper (below the median shown price), brands known to the catalog,
    colours, negations, explicit prices; leftover words narrow the search."""
    assert understand("cheaper", VOCAB, SHOWN).request.filters.price_max == pytest.approx(29.7)
    assert understand("more expensive", VOCAB, SHOWN).request.filters.price_min == pytest.approx(30.3)
    assert understand("only Home Tune", VOCAB, SHOWN).request.filters.brands == ("home tune",)
    assert understand("solo UGG", VOCAB, SHOWN).request.filters.brands == ("ugg",)
    assert understand("en rojo", VOCAB, SHOWN).request.filters.colors == ("red",)
    assert understand("sin cordones", VOCAB, SHOWN).request.filters.exclude_terms == ("laces",)
    u = understand("under $15 please", VOCAB, SHOWN)
    assert (u.intent, u.request.filters.price_max, u.request.text) == ("refine", 15.0, "")
    u = understand("only leather ones", VOCAB, SHOWN)
    assert (u.intent, u.request.text, u.request.filters.brands) == ("refine", "leather", ())
    assert understand("only Acme", VOCAB, SHOWN).request.filters.brands == ()  # unknown brand: not a filter


def test_first_search_filters() -> None:
    """A first message keeps its product words and gets price, negation and explicit brand filters."""
    u = understand("I'm looking for leather belts under $30 without buckles", VOCAB)
    assert u.request.text == "leather belts"
    assert (u.request.filters.price_max, u.request.filters.exclude_terms) == (30.0, ("buckles",))
    assert understand("slippers only from UGG", VOCAB).request.filters.brands == ("ugg",)
    assert understand("zapatos en la categoría shoes", VOCAB).request.filters.categories == ("shoes",)
