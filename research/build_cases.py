"""Writes data/eval/understanding_cases.jsonl: the six failing classes of issue 10, plus price controls.

    python research/build_cases.py

One JSON object per line: {"id", "class", "language", "message", "expect": {...}} or, for follow-ups,
{"id", "class", "language", "turns": [{"message", "expect"}, ...]} (turn 1 is a search whose results
are on screen for the next turns).

`expect` keys (only those that apply):
- price_min, price_max: a number, or null meaning "must be absent".
- search_must_contain / search_must_not_contain: words checked case- and accent-insensitively as
  substrings of the search text. An entry that is itself a list is satisfied by any of its
  alternatives (["inalámbricos", "wireless"]: Spanish kept or translated, both are fine). A
  quantity listed here may equally be kept as a typed attribute, if the implementation has one.
- exclude_terms_contain: each entry (or any-of list) must be a substring of one exclusion term.
- exclude_colors, colors: English colour names.
- intent, language: as in agent/nlu.py (search, refine, details, compare, similar, ...; en/es).
- refs: 0-based positions of the products on screen that a follow-up points at.

None of the issue's own examples is used verbatim; the controls must keep their price filters so that
a fix cannot pass by dropping prices.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "data/eval/understanding_cases.jsonl"
NO_PRICE = {"price_min": None, "price_max": None}


def case(cid: str, cls: str, lang: str, message: str, **expect: Any) -> dict[str, Any]:
    return {"id": cid, "class": cls, "language": lang, "message": message, "expect": {**expect, "language": lang}}


def q(cid: str, lang: str, message: str, contain: list[Any], **extra: Any) -> dict[str, Any]:
    """A quantity/unit case: no price filter, product word and number survive."""
    return case(cid, "quantity_not_price", lang, message, **NO_PRICE, search_must_contain=contain, **extra)


def r(cid: str, lang: str, message: str, contain: list[Any]) -> dict[str, Any]:
    """A bare range that is an age/size/year/unit range, not a price."""
    return case(cid, "range_not_price", lang, message, **NO_PRICE, search_must_contain=contain)


QUANTITIES = [
    q("qty-en-01", "en", "sd card 256GB for my camera", ["256", "sd card"]),
    q("qty-en-02", "en", "looking for a 65 inch tv stand", ["65", "tv stand"]),
    q("qty-en-03", "en", "2 liter water bottle for the gym", ["water bottle", "liter"]),
    q("qty-en-04", "en", "phone charger at least 20W", ["20", "charger"]),
    q("qty-en-05", "en", "ssd over 500 gb", ["500", "ssd"]),
    q("qty-en-06", "en", "power bank more than 20000mah", ["20000", "power bank"]),
    q("qty-en-07", "en", "coffee mugs set of 6", ["mugs", "6"]),
    q("qty-en-08", "en", "dumbbells under 10 lb each", ["dumbbells", "10"]),
    q("qty-en-09", "en", "extension cord up to 25 ft", ["25", "extension cord"]),
    q("qty-en-10", "en", "AA batteries pack of 24", ["batteries", "24"]),
    q("qty-en-11", "en", "monitor bigger than 27 inches", ["monitor", "27"]),
    q("qty-en-12", "en", "1000 piece puzzle for adults", ["puzzle", "1000"]),
    q("qty-en-13", "en", "hdmi cable no more than 3 feet", ["hdmi", "3"]),
    q("qty-en-14", "en", "rice cooker 10 cups", ["rice cooker", "10"]),
    q("qty-en-15", "en", "vitamin d3 5000 iu", ["vitamin", "5000"]),
    q("qty-es-01", "es", "memoria usb de más de 64 gb", ["64", "usb"]),
    q("qty-es-02", "es", "pantalla de 55 pulgadas", ["55", ["pantalla", "tv", "television", "screen"]]),
    q("qty-es-03", "es", "sofá de 3 plazas gris", ["3", ["sofá", "sofa", "couch"]]),
    q("qty-es-04", "es", "colchón matrimonial de 2 plazas", ["2", ["colchón", "mattress"]]),
    q("qty-es-05", "es", "botella de agua de 1 litro", ["1", ["botella", "bottle"]]),
    q("qty-es-06", "es", "olla de presión de 6 litros", ["6", ["olla", "cooker", "pot"]]),
    q("qty-es-07", "es", "taladro inalámbrico de 20 voltios", ["20", ["taladro", "drill"]]),
    q("qty-es-08", "es", "disco duro externo de hasta 2 tb", ["2", ["disco duro", "hard drive"]]),
    q("qty-es-09", "es", "bolsas de basura paquete de 100", ["100", ["basura", "trash", "garbage"]]),
    q("qty-es-10", "es", "foco led de 60 watts", ["60", ["foco", "bulb"]]),
    q("qty-es-11", "es", "tenis para correr talla 27", ["27", ["tenis", "sneakers", "shoes"]]),
    q("qty-es-12", "es", "pañales etapa 3 de 120 piezas", ["120", ["pañales", "diapers"]]),
    q("qty-es-13", "es", "cargador rápido de mínimo 30w", ["30", ["cargador", "charger"]]),
]

RANGES = [
    r("rng-en-01", "en", "board games for ages 8-12", ["board game"]),
    r("rng-en-02", "en", "camping tent for 4-6 people", ["tent"]),
    r("rng-en-03", "en", "led bulbs 40-60 watt equivalent", ["bulbs"]),
    r("rng-en-04", "en", "dog harness for 10-20 lb dogs", ["harness"]),
    r("rng-en-05", "en", "kids bike 16-20 inch", ["bike"]),
    r("rng-en-06", "en", "picture books for 2-4 year olds", ["books"]),
    r("rng-en-07", "en", "academic planner 2025-2026", ["planner"]),
    r("rng-en-08", "en", "clumping cat litter 20-40 lbs", ["litter"]),
    r("rng-en-09", "en", "womens sandals size 7-8", ["sandals"]),
    r("rng-en-10", "en", "toddler pajamas 12-18 months", ["pajamas"]),
    r("rng-en-11", "en", "fishing line 10 to 15 lb test", ["fishing line"]),
    r("rng-en-12", "en", "1-2 person hammock", ["hammock"]),
    r("rng-es-01", "es", "rompecabezas para niños de 4 a 6 años", [["rompecabezas", "puzzle"]]),
    r("rng-es-02", "es", "ropa para bebé de 6-9 meses", [["ropa", "clothes", "clothing"]]),
    r("rng-es-03", "es", "casa de campaña para 2-3 personas", [["casa de campaña", "tent"]]),
    r("rng-es-04", "es", "libros para niños de 8 a 10 años", [["libros", "books"]]),
    r("rng-es-05", "es", "zapatos de niña talla 24-25", [["zapatos", "shoes"]]),
    r("rng-es-06", "es", "tornillos para madera de 2 a 3 pulgadas", [["tornillos", "screws"]]),
    r("rng-es-07", "es", "agenda 2025-2026", [["agenda", "planner"]]),
    r("rng-es-08", "es", "mancuernas de 5-10 kg", [["mancuernas", "dumbbells"]]),
    r("rng-es-09", "es", "bicicleta para niños entre 5 y 8 años", [["bicicleta", "bike", "bicycle"]]),
    r("rng-es-10", "es", "croquetas para perro de 15-20 kilos", [["croquetas", "dog food", "perro", "dog"]]),
    r("rng-es-11", "es", "vasos térmicos de 350-500 ml", [["vasos", "tumbler", "cups"]]),
    r("rng-es-12", "es", "foco ahorrador de 9 a 12 watts", [["foco", "bulb"]]),
]


def nw(cid: str, lang: str, message: str, lo: float | None, hi: float | None, **extra: Any) -> dict[str, Any]:
    return case(cid, "number_words", lang, message, price_min=lo, price_max=hi, **extra)


NUMBER_WORDS = [
    nw("num-en-01", "en", "desk lamp under fifty dollars", None, 50, search_must_contain=["desk lamp"]),
    nw(
        "num-en-02",
        "en",
        "running shoes for less than a hundred bucks",
        None,
        100,
        search_must_contain=["running shoes"],
    ),
    nw(
        "num-en-03",
        "en",
        "gaming chair under three hundred fifty dollars",
        None,
        350,
        search_must_contain=["gaming chair"],
    ),
    nw("num-en-04", "en", "coffee maker between forty and sixty dollars", 40, 60, search_must_contain=["coffee maker"]),
    nw("num-en-05", "en", "men's watch under 1.5k", None, 1500, search_must_contain=["watch"]),
    nw("num-en-06", "en", "gaming laptop under 2k", None, 2000, search_must_contain=["laptop"]),
    nw("num-en-07", "en", "engagement ring under twelve hundred dollars", None, 1200, search_must_contain=["ring"]),
    nw("num-en-08", "en", "two pack of phone cases", None, None, search_must_contain=["phone case"]),
    nw("num-en-09", "en", "set of four wine glasses", None, None, search_must_contain=["wine glasses"]),
    nw("num-en-10", "en", "pack of twelve pencils", None, None, search_must_contain=["pencils"]),
    nw(
        "num-es-01",
        "es",
        "bocina bluetooth de menos de quinientos pesos",
        None,
        500,
        search_must_contain=[["bocina", "speaker"]],
    ),
    nw("num-es-02", "es", "reloj inteligente hasta mil pesos", None, 1000, search_must_contain=[["reloj", "watch"]]),
    nw(
        "num-es-03",
        "es",
        "licuadora de menos de mil quinientos pesos",
        None,
        1500,
        search_must_contain=[["licuadora", "blender"]],
    ),
    nw("num-es-04", "es", "tablet entre dos mil y tres mil pesos", 2000, 3000, search_must_contain=["tablet"]),
    nw(
        "num-es-05",
        "es",
        "colchón de menos de cinco mil pesos",
        None,
        5000,
        search_must_contain=[["colchón", "mattress"]],
    ),
    nw("num-es-06", "es", "perfume de menos de 3 mil pesos", None, 3000, search_must_contain=["perfume"]),
    nw(
        "num-es-07",
        "es",
        "mochila por menos de doscientos cincuenta pesos",
        None,
        250,
        search_must_contain=[["mochila", "backpack"]],
    ),
    nw("num-es-08", "es", "celular de hasta 10 mil pesos", None, 10000, search_must_contain=[["celular", "phone"]]),
    nw("num-es-09", "es", "juego de dos sartenes", None, None, search_must_contain=[["sartén", "sartenes", "pan"]]),
    nw("num-es-10", "es", "paquete de tres camisetas blancas", None, None, search_must_contain=[["camiseta", "shirt"]]),
    nw(
        "num-es-11",
        "es",
        "audífonos de diadema de menos de cien dólares",
        None,
        100,
        search_must_contain=[["audífonos", "headphones"]],
    ),
    nw("num-es-12", "es", "botas de piel de más de mil pesos", 1000, None, search_must_contain=[["botas", "boots"]]),
]


def cw(
    cid: str, lang: str, message: str, lo: float | None, hi: float | None, contain: list[Any], gone: list[str]
) -> dict[str, Any]:
    return case(
        cid,
        "currency_words",
        lang,
        message,
        price_min=lo,
        price_max=hi,
        search_must_contain=contain,
        search_must_not_contain=gone,
    )


CURRENCY = [
    cw("cur-en-01", "en", "cat tree under 60 bucks", None, 60, ["cat tree"], ["bucks", "60"]),
    cw("cur-en-02", "en", "yoga mat less than 30 dollars", None, 30, ["yoga mat"], ["dollars"]),
    cw("cur-en-03", "en", "noise cancelling headphones under 100 usd", None, 100, ["headphones"], ["usd"]),
    cw("cur-en-04", "en", "school backpack under $45 please", None, 45, ["backpack"], ["$", "45"]),
    cw("cur-en-05", "en", "blender for under 80 bucks", None, 80, ["blender"], ["bucks"]),
    cw("cur-en-06", "en", "perfume for her under 50 euros", None, 50, ["perfume"], ["euros", "euro"]),
    cw("cur-en-07", "en", "basketball sneakers max 120 dollars", None, 120, ["sneakers"], ["dollars"]),
    cw("cur-en-08", "en", "standing desk between 100 and 200 bucks", 100, 200, ["desk"], ["bucks"]),
    cw("cur-en-09", "en", "kindle case below 20 US dollars", None, 20, ["kindle case"], ["dollars"]),
    cw("cur-en-10", "en", "rain boots 40 bucks max", None, 40, ["rain boots"], ["bucks"]),
    cw("cur-en-11", "en", "phone tripod under twenty bucks", None, 20, ["tripod"], ["bucks", "twenty"]),
    cw("cur-es-01", "es", "lámpara de escritorio de menos de 300 pesos", None, 300, [["lámpara", "lamp"]], ["pesos"]),
    cw(
        "cur-es-02",
        "es",
        "freidora de aire hasta 1500 pesos mexicanos",
        None,
        1500,
        [["freidora", "fryer"]],
        ["pesos", "mexicanos"],
    ),
    cw(
        "cur-es-03",
        "es",
        "tenis para correr de menos de 80 dólares",
        None,
        80,
        [["tenis", "shoes", "sneakers"]],
        ["dólares", "dolares"],
    ),
    cw(
        "cur-es-04",
        "es",
        "maleta de mano de menos de 100 euros",
        None,
        100,
        [["maleta", "luggage", "suitcase"]],
        ["euros"],
    ),
    cw(
        "cur-es-05",
        "es",
        "audífonos gamer hasta 500 varos",
        None,
        500,
        [["audífonos", "headphones", "headset"]],
        ["varos"],
    ),
    cw("cur-es-06", "es", "funda para celular de menos de 150 mxn", None, 150, [["funda", "case"]], ["mxn"]),
    cw("cur-es-07", "es", "silla gamer entre 2000 y 3000 pesos", 2000, 3000, [["silla", "chair"]], ["pesos"]),
    cw("cur-es-08", "es", "cafetera de máximo 60 dólares", None, 60, [["cafetera", "coffee"]], ["dólares", "dolares"]),
    cw("cur-es-09", "es", "bolsa de mano de menos de 40 euros", None, 40, [["bolsa", "bag", "handbag"]], ["euros"]),
    cw("cur-es-10", "es", "termo de menos de $200 pesos", None, 200, [["termo", "thermos", "tumbler"]], ["pesos", "$"]),
    cw("cur-es-11", "es", "cartera de piel hasta 1.299,00 €", None, 1299, [["cartera", "wallet"]], ["€"]),
    cw("cur-es-12", "es", "mouse inalámbrico de menos de 25,50 dólares", None, 25.5, ["mouse"], ["dólares", "dolares"]),
]


def ng(cid: str, lang: str, message: str, **expect: Any) -> dict[str, Any]:
    return case(cid, "negation_scope", lang, message, **expect)


NEGATIONS = [
    ng(
        "neg-en-01",
        "en",
        "party dress not in black",
        exclude_colors=["black"],
        search_must_contain=["dress"],
        search_must_not_contain=["black"],
    ),
    ng(
        "neg-en-02",
        "en",
        "running shoes, no white please",
        exclude_colors=["white"],
        search_must_contain=["running shoes"],
        search_must_not_contain=["white", "please"],
    ),
    ng(
        "neg-en-03",
        "en",
        "phone case any color but pink",
        exclude_colors=["pink"],
        search_must_contain=["phone case"],
        search_must_not_contain=["pink"],
    ),
    ng(
        "neg-en-04",
        "en",
        "sofa without ottoman but with cup holders",
        exclude_terms_contain=["ottoman"],
        search_must_contain=["sofa", "cup holder"],
    ),
    ng(
        "neg-en-05",
        "en",
        "backpack without wheels and with a laptop sleeve",
        exclude_terms_contain=["wheels"],
        search_must_contain=["backpack", "laptop"],
    ),
    ng(
        "neg-en-06",
        "en",
        "men's hoodie without zipper",
        exclude_terms_contain=["zipper"],
        search_must_contain=["hoodie"],
        search_must_not_contain=["zipper"],
    ),
    ng(
        "neg-en-07",
        "en",
        "sneakers that aren't black",
        exclude_colors=["black"],
        search_must_contain=["sneakers"],
        search_must_not_contain=["black"],
    ),
    ng(
        "neg-en-08",
        "en",
        "gluten free crackers without sesame",
        exclude_terms_contain=["sesame"],
        search_must_contain=["crackers", "gluten"],
    ),
    ng(
        "neg-en-09",
        "en",
        "queen bed frame no headboard",
        exclude_terms_contain=["headboard"],
        search_must_contain=["bed frame", "queen"],
    ),
    ng(
        "neg-en-10",
        "en",
        "leggings with no pockets, please",
        exclude_terms_contain=["pocket"],
        search_must_contain=["leggings"],
        search_must_not_contain=["pockets", "please"],
    ),
    ng(
        "neg-en-11",
        "en",
        "lunch box that's not pink or purple",
        exclude_colors=["pink", "purple"],
        search_must_contain=["lunch box"],
        search_must_not_contain=["pink", "purple"],
    ),
    ng(
        "neg-en-12",
        "en",
        "plain navy t-shirt without logo",
        exclude_terms_contain=["logo"],
        search_must_contain=["t-shirt"],
        search_must_not_contain=["logo"],
    ),
    ng(
        "neg-es-01",
        "es",
        "vestido de fiesta que no sea rojo",
        exclude_colors=["red"],
        search_must_contain=[["vestido", "dress"]],
        search_must_not_contain=["rojo", "red"],
    ),
    ng(
        "neg-es-02",
        "es",
        "tenis sin agujetas para niño",
        exclude_terms_contain=[["agujetas", "laces", "lace"]],
        search_must_contain=[["tenis", "sneakers", "shoes"]],
    ),
    ng(
        "neg-es-03",
        "es",
        "sudadera sin capucha por favor",
        exclude_terms_contain=[["capucha", "hood"]],
        search_must_contain=[["sudadera", "sweatshirt"]],
        search_must_not_contain=["favor", "capucha"],
    ),
    ng(
        "neg-es-04",
        "es",
        "funda de celular de cualquier color menos negro",
        exclude_colors=["black"],
        search_must_contain=[["funda", "case"]],
        search_must_not_contain=["negro", "black"],
    ),
    ng(
        "neg-es-05",
        "es",
        "mochila sin ruedas pero con muchos bolsillos",
        exclude_terms_contain=[["ruedas", "wheels"]],
        search_must_contain=[["mochila", "backpack"], ["bolsillos", "pockets"]],
    ),
    ng(
        "neg-es-06",
        "es",
        "chamarra que no sea de piel",
        exclude_terms_contain=[["piel", "leather"]],
        search_must_contain=[["chamarra", "jacket"]],
        search_must_not_contain=["piel", "leather"],
    ),
    ng(
        "neg-es-07",
        "es",
        "zapatos de vestir que no sean cafés",
        exclude_colors=["brown"],
        search_must_contain=[["zapatos", "shoes"]],
        search_must_not_contain=["caf", "brown"],
    ),
    ng(
        "neg-es-08",
        "es",
        "leggings sin costuras y de tiro alto",
        exclude_terms_contain=[["costuras", "seam"]],
        search_must_contain=["leggings", ["tiro alto", "high waist"]],
    ),
    ng(
        "neg-es-09",
        "es",
        "cafetera sin cápsulas, por favor",
        exclude_terms_contain=[["cápsulas", "capsulas", "pods", "capsule"]],
        search_must_contain=[["cafetera", "coffee"]],
        search_must_not_contain=["favor"],
    ),
    ng(
        "neg-es-10",
        "es",
        "bolsa de mano que no sea negra ni café",
        exclude_colors=["black", "brown"],
        search_must_contain=[["bolsa", "bag", "handbag"]],
        search_must_not_contain=["negra", "black"],
    ),
    ng(
        "neg-es-11",
        "es",
        "lámpara de buró sin pilas",
        exclude_terms_contain=[["pilas", "batter"]],
        search_must_contain=[["lámpara", "lamp"]],
    ),
    ng(
        "neg-es-12",
        "es",
        "toallas de baño blancas, no grises",
        exclude_colors=["gray"],
        search_must_contain=[["toallas", "towels"]],
        search_must_not_contain=["grises", "gray"],
    ),
]


def sp(cid: str, message: str, contain: list[Any]) -> dict[str, Any]:
    """A Spanish product phrase: every product word survives, translated or not (no half translations)."""
    return case(cid, "spanish_followups", "es", message, intent="search", **NO_PRICE, search_must_contain=contain)


def conv(cid: str, lang: str, turns: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "id": cid,
        "class": "spanish_followups",
        "language": lang,
        "turns": [{"message": m, "expect": {**e, "language": lang}} for m, e in turns],
    }


SEARCH = {"intent": "search"}
SPANISH = [
    sp(
        "es-word-01",
        "bocina inalámbrica a prueba de agua",
        [["bocina", "speaker"], ["inalámbrica", "inalambrica", "wireless"]],
    ),
    sp(
        "es-word-02",
        "cargador inalámbrico para celular",
        [["cargador", "charger"], ["inalámbrico", "inalambrico", "wireless"]],
    ),
    sp(
        "es-word-03",
        "audífonos con cable para computadora",
        [["audífonos", "audifonos", "headphones"], ["cable", "wired"]],
    ),
    sp(
        "es-word-04",
        "teclado mecánico retroiluminado",
        [["teclado", "keyboard"], ["mecánico", "mecanico", "mechanical"]],
    ),
    sp("es-word-05", "mochila impermeable para laptop", [["mochila", "backpack"], ["impermeable", "waterproof"]]),
    sp("es-word-06", "reloj inteligente para mujer", [["reloj inteligente", "smartwatch", "smart watch"]]),
    sp("es-word-07", "chamarra de mezclilla para hombre", [["chamarra", "jacket"], ["mezclilla", "denim"]]),
    sp("es-word-08", "plancha para el cabello", [["plancha", "straightener", "flat iron"], ["cabello", "hair"]]),
    conv(
        "es-conv-01",
        "es",
        [("busco cafeteras de goteo", SEARCH), ("¿de qué marca es el tercero?", {"intent": "details", "refs": [2]})],
    ),
    conv(
        "es-conv-02",
        "es",
        [("lámparas de escritorio", SEARCH), ("¿cuánto cuesta la primera?", {"intent": "details", "refs": [0]})],
    ),
    conv(
        "es-conv-03",
        "es",
        [("sandalias para mujer", SEARCH), ("¿cuál es la más barata de estas?", {"intent": "compare"})],
    ),
    conv(
        "es-conv-04", "es", [("mochilas escolares", SEARCH), ("¿cuál tiene mejor calificación?", {"intent": "compare"})]
    ),
    conv(
        "es-conv-05",
        "es",
        [("termos de acero inoxidable", SEARCH), ("más como el segundo", {"intent": "similar", "refs": [1]})],
    ),
    conv("es-conv-06", "es", [("tenis para correr", SEARCH), ("más baratos", {"intent": "refine"})]),
    conv(
        "es-conv-07",
        "es",
        [("tazas de cerámica", SEARCH), ("compara el primero con el cuarto", {"intent": "compare", "refs": [0, 3]})],
    ),
    conv(
        "es-conv-08",
        "es",
        [("bolsas de mano", SEARCH), ("solo en color negro", {"intent": "refine", "colors": ["black"]})],
    ),
    conv(
        "es-conv-09",
        "es",
        [
            ("sartenes antiadherentes", SEARCH),
            ("sin teflón", {"intent": "refine", "exclude_terms_contain": [["teflón", "teflon"]]}),
        ],
    ),
    conv(
        "es-conv-10",
        "es",
        [("bocinas bluetooth", SEARCH), ("¿el segundo es resistente al agua?", {"intent": "details", "refs": [1]})],
    ),
    conv(
        "es-conv-11",
        "es",
        [("almohadas de memory foam", SEARCH), ("¿y el precio del cuarto?", {"intent": "details", "refs": [3]})],
    ),
    conv(
        "es-conv-12",
        "es",
        [("relojes para hombre", SEARCH), ("enséñame más parecidos al primero", {"intent": "similar", "refs": [0]})],
    ),
    conv(
        "es-conv-13",
        "es",
        [
            ("cuadernos profesionales", SEARCH),
            ("quiero ver los de menos de 100 pesos", {"intent": "refine", "price_max": 100}),
        ],
    ),
    conv(
        "es-conv-14",
        "es",
        [("lentes de sol", SEARCH), ("¿de qué color es el primero?", {"intent": "details", "refs": [0]})],
    ),
    conv(
        "es-conv-15", "es", [("toallas de baño", SEARCH), ("¿hay en azul?", {"intent": "refine", "colors": ["blue"]})]
    ),
    conv(
        "es-conv-16",
        "es",
        [
            ("cojines para sala", SEARCH),
            (
                "otra cosa: busco cortinas blackout",
                {"intent": "search", "search_must_contain": [["cortinas", "curtains"]]},
            ),
        ],
    ),
    conv(
        "en-conv-01",
        "en",
        [("desk lamps", SEARCH), ("what brand is the second one?", {"intent": "details", "refs": [1]})],
    ),
    conv("en-conv-02", "en", [("drip coffee makers", SEARCH), ("which one is the cheapest?", {"intent": "compare"})]),
]


def ctl(cid: str, lang: str, message: str, lo: float | None, hi: float | None) -> dict[str, Any]:
    return case(cid, "control_price", lang, message, price_min=lo, price_max=hi)


CONTROLS = [
    ctl("ctl-en-01", "en", "throw pillows under $50", None, 50),
    ctl("ctl-en-02", "en", "gaming mouse between $20 and $40", 20, 40),
    ctl("ctl-en-03", "en", "espresso machine under 1.5k", None, 1500),
    ctl("ctl-en-04", "en", "office chair for two hundred dollars or less", None, 200),
    ctl("ctl-en-05", "en", "kids scooter under 25 bucks", None, 25),
    ctl("ctl-en-06", "en", "air fryer over $100", 100, None),
    ctl("ctl-en-07", "en", "jeans from $30 to $60", 30, 60),
    ctl("ctl-en-08", "en", "running watch less than $250", None, 250),
    ctl("ctl-en-09", "en", "$20-$40 scented candles", 20, 40),
    ctl("ctl-en-10", "en", "sunglasses at most 75 dollars", None, 75),
    ctl("ctl-en-11", "en", "laser printer no more than $150", None, 150),
    ctl("ctl-en-12", "en", "tv above 500 dollars", 500, None),
    ctl("ctl-en-13", "en", "diamond ring under $1,299.99", None, 1299.99),
    ctl("ctl-en-14", "en", "leather wallet cheaper than 35 dollars", None, 35),
    ctl("ctl-en-15", "en", "road bike under $1.2k", None, 1200),
    ctl("ctl-es-01", "es", "plancha de ropa de menos de 500 pesos", None, 500),
    ctl("ctl-es-02", "es", "audífonos entre 20 y 40 dólares", 20, 40),
    ctl("ctl-es-03", "es", "cafetera de dos mil pesos o menos", None, 2000),
    ctl("ctl-es-04", "es", "tenis de más de 1000 pesos", 1000, None),
    ctl("ctl-es-05", "es", "licuadora hasta $800", None, 800),
    ctl("ctl-es-06", "es", "bolso de menos de 1.299,00 €", None, 1299),
    ctl("ctl-es-07", "es", "mochila entre 300 y 600 pesos", 300, 600),
    ctl("ctl-es-08", "es", "lámpara por menos de 25,50 euros", None, 25.5),
    ctl("ctl-es-09", "es", "smartwatch de máximo 3500 pesos", None, 3500),
    ctl("ctl-es-10", "es", "perfume desde 1,500 pesos", 1500, None),
    ctl("ctl-es-11", "es", "teclado de menos de mil pesos", None, 1000),
    ctl("ctl-es-12", "es", "silla de oficina por debajo de 4 mil pesos", None, 4000),
    ctl("ctl-es-13", "es", "audífonos de quinientos pesos para abajo", None, 500),
    ctl("ctl-es-14", "es", "vestido de no más de 60 dólares", None, 60),
    ctl("ctl-es-15", "es", "juego de sábanas de menos de 1.5k", None, 1500),
    ctl("ctl-es-16", "es", "bocina de hasta 2 mil pesos", None, 2000),
]

ALL = QUANTITIES + RANGES + NUMBER_WORDS + CURRENCY + NEGATIONS + SPANISH + CONTROLS


def main() -> None:
    ids = [c["id"] for c in ALL]
    assert len(ids) == len(set(ids)), "duplicate ids"
    with OUT.open("w", encoding="utf-8") as fh:
        for c in ALL:
            fh.write(json.dumps(c, ensure_ascii=False) + "\n")
    by_class: dict[str, int] = {}
    for c in ALL:
        by_class[c["class"]] = by_class.get(c["class"], 0) + 1
    print(OUT, len(ALL), by_class)  # noqa: T201


if __name__ == "__main__":
    main()
