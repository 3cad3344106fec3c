"""Grounding checks on answers as small models write them (shapes from docs/llm-measurements.md). No network."""

from __future__ import annotations

import pytest

from shopagent.grounding import known_products, money_amounts, problems, said_amounts

PRODUCTS = known_products(
    [
        {"product_id": "B0A1AAAAAA", "name": "Nike Revolution 6 Running Shoe", "price": 59.99},
        {"product_id": "B0A2AAAAAA", "name": "ASICS Gel-Contend 7 Running Shoe", "price": 64.95},
        {"product_id": "B0A3AAAAAA", "name": "Brooks Ghost 14", "price": 129.0},
        {"product_id": "B07CXG6C9W", "name": "Kindle Paperwhite – Now Waterproof with 2x the Storage", "price": None},
        {"product_id": "B0A1AAAAAA", "name": "Nike Revolution 6 Running Shoe", "price": 59.99},  # a duplicate
    ]
)
SAID = said_amounts("running shoes under 80 dollars")


def test_amounts() -> None:
    """Dollar signs before, currency words after, thousands and Spanish decimal commas."""
    assert money_amounts("$59.99, 80 dollars, US$ 12, USD 7.5, 15 dólares, $1,299 and $59,99") == [
        59.99, 80.0, 12.0, 7.5, 15.0, 1299.0, 59.99]  # fmt: skip
    assert money_amounts("rated 4.5/5 by 1,234 reviews, size 10") == []
    assert len(PRODUCTS) == 4


@pytest.mark.parametrize(
    "answer",
    [
        # the 1.5B's answer after the tool result, numbered items run together on one line
        "I found 3 products under 80 dollars. They are:  1. Nike Revolution 6 Running Shoe - $59.99 "
        "2. ASICS Gel-Contend 7 Running Shoe - $64.95",
        "Here:\n1. Nike Revolution 6 - $59.99\n2. Brooks Ghost 14 — $129.00\n3. Kindle Paperwhite: price unknown",
        "1. Nike Revolution 6 Running Shoe: lightweight, breathable and comfortable for daily runs - $59.99",
        "Te recomiendo:\n1. Nike Revolution 6 - $59,99\n2. Brooks Ghost 14 — 129 dólares, $69.01 más caro",
        "The **Brooks Ghost 14** costs about $129, the Nike one $60.",
        "Hi! I can:\n1. Search the catalog\n2. Compare products\n3. Find similar ones",
        "Product B0A1AAAAAA is in stock.",
    ],
)
def test_grounded_answers_pass(answer: str) -> None:
    """Exact, shortened and described names; whole-dollar roundings; price differences; the shopper's own
    bound; lists that are not products; known ids."""
    assert problems(answer, PRODUCTS, SAID) == []


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("1. **Nike Air Zoom Pegasus 38** - $89.99\n2. ASICS Gel-Contend 7 - $64.95", "price $89.99"),
        ("1. Nike Air Zoom Pegasus 38 Running Shoe\n2. Brooks Ghost 14", "product not in the results"),
        ("1. Nike Revolution 6 Running Shoe - $64.95\n2. ASICS Gel-Contend 7 - $59.99", "is not the price of"),
        ("See B0A1AAAAAA or B0ZZZZZZZZ.", "unknown product id B0ZZZZZZZZ"),
        ("They all cost less than $45.", "price $45.00"),
    ],
)
def test_ungrounded_answers_say_why(answer: str, why: str) -> None:
    """Invented products and prices, prices swapped between products, unknown ids."""
    found = problems(answer, PRODUCTS, SAID)
    assert found and any(why in p for p in found), found
