"""Understanding shoppers: the six classes of issue 10 (quantities and bare ranges are not prices, number words,
currency words, negation scope, Spanish follow-ups) on the labelled cases, new examples of each class written
for this suite, and properties that must hold for any message (hypothesis)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import read_products
from hypothesis import given, settings
from hypothesis import strategies as st

from shopagent.evals.understanding import SHOWN, load_cases, score, split
from shopagent.settings import PROJECT_ROOT
from shopagent.understanding import Understanding, Vocabulary, parse_search, understand
from shopagent.understanding.numbers import parse_amount, words_to_digits
from shopagent.understanding.prices import extract_price
from shopagent.understanding.quantities import UNITS
from shopagent.understanding.spelling import correct

CASES = PROJECT_ROOT / "data" / "eval" / "understanding_cases.jsonl"


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    """The sample catalog's vocabulary (brands, categories, name words)."""
    return Vocabulary.from_products(read_products())


def run(vocab: Vocabulary):  # type: ignore[no-untyped-def]
    """`understand` as the case scorer calls it."""
    return lambda message, shown, previous: understand(message, vocab, shown, previous)


@pytest.mark.parametrize("which", ["dev", "heldout"])
def test_labelled_cases_per_class(vocab: Vocabulary, which: str) -> None:
    """Every class passes on both splits of data/eval/understanding_cases.jsonl (rules were written against
    "dev"; "heldout" was checked once at the end: 64/68 then, against 32/68 before the rebuild)."""
    cases = [c for c in load_cases(CASES) if split(c["id"]) == which]
    result = score(run(vocab), cases)
    passed = sum(p for p, _ in result["per_class"].values())
    total = sum(n for _, n in result["per_class"].values())
    assert passed / total >= (0.97 if which == "dev" else 0.9), result["failures"]
    for cls, (p, n) in result["per_class"].items():
        assert p / n >= 0.75, (cls, result["failures"])


# New members of each class, written for this suite (not from the issue, not from the labelled cases).
PRICES = [
    ("usb hub with 7 ports under 30 bucks", None, 30.0, ["usb hub", "7 ports"]),
    ("microSD 512GB no more than 60 dollars", None, 60.0, ["512gb"]),
    ("lámpara de pie de 1.8 metros de menos de 900 pesos", None, 900.0, ["1.8 metros"]),
    ("mesa plegable para 6 personas entre mil y dos mil pesos", 1000.0, 2000.0, ["6 personas"]),
    ("baby walker for 6-12 months", None, None, ["6-12 months"]),
    ("tool set 120 pieces around $80", 64.0, 96.0, ["120 pieces"]),
    ("bike helmet for kids under 10", None, None, ["helmet"]),
    ("desk lamp, seventy five dollars or less", None, 75.0, ["desk lamp"]),
    ("ventilador de techo de mil doscientos pesos para abajo", None, 1200.0, []),
    ("tv 4k 55 pulgadas hasta 8 mil pesos", None, 8000.0, ["4k", "55 pulgadas"]),
    ("printer paper 500 sheets", None, None, ["500 sheets"]),
    ("a $25 gift card holder", None, None, ["gift card holder"]),
]


@pytest.mark.parametrize(("message", "price_min", "price_max", "kept"), PRICES)
def test_prices_need_evidence_and_quantities_stay(
    vocab: Vocabulary, message: str, price_min: float | None, price_max: float | None, kept: list[str]
) -> None:
    """A price filter only with evidence; quantities and sizes stay in the search text; money words leave it."""
    parsed = parse_search(message, vocab=vocab)
    assert (parsed.filters.price_min, parsed.filters.price_max) == (price_min, price_max), parsed
    for word in kept:
        assert word.lower() in parsed.text.lower(), parsed
    assert not re.search(r"\b(bucks|dollars?|pesos|d[oó]lares)\b|\$", parsed.text, re.I), parsed


BOUNDS = [
    ("USB flash drive with more than 128GB", "usb flash drive 128gb"),
    ("power bank at least 20000mah", "power bank 20000mah"),
    ("a velvet sofa under $800 in stock", "velvet sofa"),
    ("botella de agua de más de 2 litros", "2 litros"),
    ("dog crate up to 42 inches", "dog crate 42 inches"),
]


@pytest.mark.parametrize(("message", "text"), BOUNDS)
def test_bounds_before_quantities_and_articles_leave_the_search_text(
    vocab: Vocabulary, message: str, text: str
) -> None:
    """ "with more than 128GB" searches for 128GB (not for "more" and "than"), and is no price; a leading article
    is not a search word."""
    parsed = parse_search(message, vocab=vocab)
    assert text in parsed.text.lower(), parsed
    assert not re.search(r"\b(more|than|least|hasta|m[aá]s)\b|^(a|an|the)\b", parsed.text, re.I), parsed
    assert parsed.filters.price_min is None


NEGATIONS = [
    ("winter coat that isn't black or navy", [], ["black", "navy"], "coat"),
    ("ceramic mugs without lids, please", ["lids"], [], "ceramic mugs"),
    ("mochila escolar sin ruedas y con lonchera", ["wheels"], [], "lonchera"),
    ("tenis que no sean blancos", [], ["white"], "sneakers"),
    ("cortinas de cualquier color menos gris", [], ["gray"], "cortinas"),
    ("standing desk no drawers but with a shelf", ["drawers"], [], "shelf"),
    ("sudadera sin gorro por favor", ["gorro"], [], "sudadera"),
]


@pytest.mark.parametrize(("message", "terms", "colors", "kept"), NEGATIONS)
def test_negation_scope_and_negated_colours(
    vocab: Vocabulary, message: str, terms: list[str], colors: list[str], kept: str
) -> None:
    """A negated colour excludes the colour; the span stops at conjunctions and politeness."""
    parsed = parse_search(message, vocab=vocab)
    assert list(parsed.filters.exclude_colors) == colors, parsed
    assert [t.lower() for t in parsed.filters.exclude_terms] == terms, parsed
    assert kept in parsed.text.lower(), parsed
    assert not any(c in parsed.text.lower() for c in colors), parsed
    assert "please" not in parsed.text and "favor" not in parsed.text, parsed


FOLLOW_UPS = [
    ("¿cuál de estos es el más barato?", "compare", [], None),
    ("which brand makes the fourth one?", "details", [3], "brand"),
    ("¿la tercera tiene buenas opiniones?", "details", [2], "rating"),
    ("y el quinto, ¿cuánto vale?", "details", [4], "price"),
    ("which of these has the best reviews?", "compare", [], "rating"),
    ("parecidos al último", "similar", [4], None),
    ("¿tienes algo igual pero en rojo?", "refine", [], None),
]


@pytest.mark.parametrize(("message", "intent", "refs", "facet"), FOLLOW_UPS)
def test_follow_ups_about_shown_products(
    vocab: Vocabulary, message: str, intent: str, refs: list[int], facet: str | None
) -> None:
    """Questions about the products on screen are answered from them, in Spanish as in English."""
    u: Understanding = understand(message, vocab, SHOWN, "es" if "¿" in message else None)
    assert (u.intent, u.refs) == (intent, refs), u
    if facet is not None:
        assert u.facet == facet, u


def test_number_words_and_amounts() -> None:
    """text2num with guards (ordinals and a lone article untouched), price-parser for separators."""
    assert words_to_digits("under two hundred and fifty dollars, the second one", "en") == (
        "under 250 dollars, the second one"
    )
    assert words_to_digits("entre dos mil y tres mil pesos, el tercero y una botella", "es") == (
        "entre 2000 y 3000 pesos, el tercero y una botella"
    )
    assert words_to_digits("hasta 2.5 mil pesos", "es") == "hasta 2500 pesos"
    assert [parse_amount(a) for a in ("1.299,00", "$1,299.99", "25,50", "1.5k", "7")] == [1299, 1299.99, 25.5, 1500, 7]


# ---------------------------------------------------------------- properties, for any message

MESSAGE = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=120)
WORDS = st.lists(st.sampled_from("red shoes lamp sofa velvet mesa azul under menos de and y sin without the".split()))


@settings(max_examples=300, deadline=None)
@given(MESSAGE)
def test_parsing_never_raises_and_filters_are_sane(text: str) -> None:
    """Any text parses; prices are finite, non-negative and ordered."""
    parsed = parse_search(text)
    f = parsed.filters
    for value in (f.price_min, f.price_max):
        assert value is None or 0 <= value < float("inf")
    if f.price_min is not None and f.price_max is not None:
        assert f.price_min <= f.price_max


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["usb drive", "tv", "menos de", "under", "more than", "más de", "pack of"]), max_size=2),
    st.integers(min_value=1, max_value=5000),
    st.sampled_from([u.split("|")[0] for u in UNITS.replace("?", "").split("|") if u.isalpha() and len(u) > 1]),
)
def test_a_number_followed_by_a_unit_is_never_a_price(prefix: list[str], number: int, unit: str) -> None:
    """'more than 128 GB', 'menos de 5 litros', 'under 10 lb': quantities, whatever comes before them."""
    text = f"{' '.join(prefix)} {number} {unit}".strip()
    price = extract_price(text, "en")
    assert (price.price_min, price.price_max) == (None, None), text


@settings(max_examples=200, deadline=None)
@given(WORDS, st.integers(min_value=1, max_value=100000))
def test_a_price_filter_always_has_evidence(words: list[str], number: int) -> None:
    """A bare number next to product words is never a price: only comparators or currencies make one."""
    text = " ".join([*words, str(number)])
    price = extract_price(text, "en")
    evidence = re.search(r"\b(under|menos\s+de)\b", text)
    if not evidence:
        assert (price.price_min, price.price_max) == (None, None), text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("velvet sofa walnut desk ceramic mug leather wallet".split()), min_size=1, max_size=5))
def test_product_words_survive(words: list[str]) -> None:
    """Words that are neither filters nor fillers are never lost from the search text."""
    parsed = parse_search(" ".join(words))
    assert all(w in parsed.text.split() for w in words), parsed


def test_cases_file_is_split_for_development() -> None:
    """About a third of the cases are held out, stably."""
    ids = [c["id"] for c in load_cases(Path(CASES))]
    held = [i for i in ids if split(i) == "heldout"]
    assert 0.25 < len(held) / len(ids) < 0.42 and [split(i) for i in ids] == [split(i) for i in ids]


@pytest.mark.parametrize(
    ("text", "fixed"),
    [
        ("todler water botle", "toddler water bottle"),
        ("dog crate", "dog crate"),  # a word, though this catalog sells no crates: never "create"
        ("hiking boots", "hiking boots"),
        ("cofee mug", "coffee mug"),
    ],
)
def test_spelling_fixes_typos_but_never_real_words(text: str, fixed: str) -> None:
    """Unknown words move toward catalog words; English words the catalog lacks are left as written."""
    catalog = frozenset("toddler water bottle create coffee mug hiking boot hinge".split())
    assert correct(text, catalog) == fixed


@pytest.mark.parametrize(
    ("message", "english", "not_in"),
    [
        ("quiero un juego de sábanas", "set", "game"),
        ("juego de cuchillos sin bloque", "set knives", "game"),
        ("juegos de mesa para niños", "board games", "set"),
        ("un kit de herramientas", "kit tools", "de"),
    ],
)
def test_spanish_set_phrases(message: str, english: str, not_in: str) -> None:
    """ "juego de X" is a set of X (sheets, knives), "juegos de mesa" are board games: set phrases are translated
    as phrases before word by word."""
    text = parse_search(message, language="es").text
    assert english in text and not re.search(rf"\b{not_in}\b", text), text


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ("busco unos audífonos inalámbricos por menos de 50 dólares", "inalámbricos"),
        ("mochila por menos de 300 pesos", "mochila"),
        ("zapatos por debajo de 40 dólares", "zapatos"),
    ],
)
def test_no_spanish_connective_left_dangling(message: str, text: str) -> None:
    """Cutting "menos de 50 dólares" out of "… por menos de 50 dólares" leaves no "por" in the search text or in
    the words shown back to the shopper."""
    parsed = parse_search(message, language="es")
    assert parsed.filters.price_max is not None
    assert text in parsed.native and not re.search(r"\bpor$", parsed.text) and not re.search(r"\bpor$", parsed.native)
