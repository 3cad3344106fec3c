"""Quantities are not prices: "128GB", "65 inch", "20000mah", "3-5 years", "pack of 24", "2 plazas", "talla 8",
"de 4 a 6 años" are attributes the shopper wants, kept in the search text. A small English/Spanish unit
lexicon decides (quantulum3 was measured and dropped: English only, a broken classifier here, 2 s to import).
"""

from __future__ import annotations

import re

from shopagent.understanding.numbers import AMOUNT_NUMBER

# Units that follow a number ("128 GB", "2 litros"): storage, power, size, weight, volume, count, time, people.
UNITS = (
    "gb|tb|mb|gigs?|gigabytes?|terabytes?|mah|kwh|kw|w|watts?|vatios|v|volts?|voltios|amps?|hz|khz|mhz|ghz|"
    "in(?!\s+stock)|inch|inches|pulgadas?|pulg|cm|mm|meters?|metres?|metros?|ft|foot|feet|pies|yds?|yards?|"
    "lb|lbs|pounds?|libras?|kg|kgs|kilos?|kilogramos?|g|gr|grams?|gramos?|oz|ounces?|onzas?|"
    "ml|l|liters?|litres?|litros?|gal|gallons?|gal[oó]n|galones|qt|quarts?|cups?|tazas?|"
    "pcs?|pieces?|piezas?|pzas?|packs?|paquetes?|count|ct|sets?|units?|unidades|pairs?|pares|rolls?|rollos|sheets?|"
    "hojas|pods|capsules|c[aá]psulas|plazas|seats?|asientos|people|persons?|personas|players|jugadores|"
    "years?|yrs?|yo|a[nñ]os|months?|mos?|meses|weeks?|semanas|days?|d[ií]as|hours?|hrs?|horas|"
    'hp|rpm|btu|mp|megapixels?|dpi|ppm|fps|degrees?|grados|x|%|"'
)
# Words before a number that make it a size, a count or an age ("size 8", "pack of 24", "para 2-3 personas").
LEADS = (
    r"size|sizes|talla|tallas|n[uú]mero|ages?|edad(?:es)?|for\s+ages|pack\s+of|set\s+of|box\s+of|case\s+of|"
    r"bundle\s+of|paquete\s+de|juego\s+de|caja\s+de|kit\s+de|series|model|modelo|version|versi[oó]n|gen|generation"
)
_RANGE = r"(?:\s*(?:-|–|to|a|y|and)\s*" + AMOUNT_NUMBER + ")?"
QUANTITY = re.compile(
    rf"(?<![\w$€£])(?:{AMOUNT_NUMBER}){_RANGE}\s*-?\s*(?:{UNITS})(?![\w])"
    rf"|(?:\b(?:{LEADS}))\s*#?\s*(?:{AMOUNT_NUMBER}){_RANGE}"
    r"|\b(?:19|20)\d\d\s*[-–/]\s*(?:19|20)?\d\d\b",  # years: "2025-2026"
    re.I,
)
# People a product is for, where "under 5" is an age ("toys for kids under 5", "niños menores de 3").
AGE_CONTEXT = re.compile(
    r"\b(kids?|child|children|toddlers?|babies|baby|infants?|boys?|girls?|teens?|tweens?|newborns?|"
    r"ni[nñ][oa]s?|beb[eé]s?|menores|peques)\b",
    re.I,
)
MAX_AGE = 18


def quantity_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every quantity in `text` (a number with a unit, a size, a count, an age, a year range)."""
    return [m.span() for m in QUANTITY.finditer(text)]


def overlaps(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    """True when `span` shares characters with any of `spans`."""
    return any(span[0] < end and start < span[1] for start, end in spans)
