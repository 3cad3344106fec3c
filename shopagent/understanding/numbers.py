"""Numbers as shoppers write them: number words in English and Spanish ("two hundred", "dos mil",
"quinientos") become digits with `text2num`; amounts with separators, decimal commas and multipliers
("$1,299.99", "1.299,00", "25,50", "1.5k", "3 mil") become floats with `price-parser`.

Ordinals ("the third one", "el tercero") are never touched: they are references to products on screen.
A lone article-like "one"/"un"/"una" is not a number either ("una botella").
"""

from __future__ import annotations

import re
from functools import lru_cache

from price_parser import Price
from text_to_num import text2num

_EN_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
_EN_UNITS += "seventeen eighteen nineteen"
_EN_TENS = "twenty thirty forty fifty sixty seventy eighty ninety"
_EN_SCALES = "hundred thousand million"
_ES_UNITS = "cero uno una un dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince dieciséis "
_ES_UNITS += (
    "dieciseis diecisiete dieciocho diecinueve veinte veintiuno veintiún veintiun veintidós veintidos veintitrés "
)
_ES_UNITS += "veintitres veinticuatro veinticinco veintiséis veintiseis veintisiete veintiocho veintinueve"
_ES_TENS = "treinta cuarenta cincuenta sesenta setenta ochenta noventa"
_ES_HUNDREDS = "cien ciento doscientos doscientas trescientos trescientas cuatrocientos cuatrocientas quinientos "
_ES_HUNDREDS += (
    "quinientas seiscientos seiscientas setecientos setecientas ochocientos ochocientas novecientos novecientas"
)
_ES_SCALES = "mil millón millon millones"

_WORDS = {
    "en": set(f"{_EN_UNITS} {_EN_TENS} {_EN_SCALES}".split()),
    "es": set(f"{_ES_UNITS} {_ES_TENS} {_ES_HUNDREDS} {_ES_SCALES}".split()),
}
# Words that are numbers only inside a longer number ("a hundred", "one thousand"), never alone.
_NOT_ALONE = {"one", "un", "una", "uno", "a"}


_ES_TENS_SET = set(_ES_TENS.split())
_ES_UNIT_SET = set("uno una un dos tres cuatro cinco seis siete ocho nueve".split())
_TOKEN = re.compile(r"[^\W\d_]+|\S", re.UNICODE)


def _joins(lang: str, before: str, joiner: str, after: str) -> bool:
    """Whether `joiner` between two number words belongs to one number ("treinta y cinco", "two hundred and
    fifty", "forty-five") rather than separating two ("entre dos mil y tres mil", "forty and sixty")."""
    if joiner == "-":
        return True
    if lang == "es":
        return joiner == "y" and before in _ES_TENS_SET and after in _ES_UNIT_SET
    return joiner == "and" and before in ("hundred", "thousand") and after not in ("hundred", "thousand", "million")


def _number_spans(text: str, lang: str) -> list[tuple[int, int]]:
    """(start, end) of every run of number words in `text`."""
    words = _WORDS.get(lang, _WORDS["en"])
    tokens = [(m.group(0).lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        word, start, end = tokens[i]
        article = lang == "en" and word in ("a", "an") and i + 1 < len(tokens) and tokens[i + 1][0] in _WORDS["en"]
        if word not in words and not article:
            i += 1
            continue
        j = i + 1
        while j < len(tokens):
            if tokens[j][0] in words:
                j += 1
            elif (
                j + 1 < len(tokens)
                and tokens[j + 1][0] in words
                and _joins(lang, *(t[0] for t in tokens[j - 1 : j + 2]))
            ):
                j += 2
            else:
                break
        spans.append((start, tokens[j - 1][2]))
        i = j
    return spans


# "3 mil", "2.5 thousand": digits times a scale word, written together as one number.
_SCALED = {
    "en": re.compile(r"\b(\d+(?:\.\d+)?)\s+(thousand|million)\b", re.I),
    "es": re.compile(r"\b(\d+(?:[.,]\d+)?)\s+(mil|millones|mill[oó]n)\b", re.I),
}
_SCALE = {"thousand": 1_000, "mil": 1_000, "million": 1_000_000, "millones": 1_000_000, "millón": 1_000_000,
          "millon": 1_000_000}  # fmt: skip


def _scaled(m: re.Match[str]) -> str:
    """'3 mil' -> '3000'."""
    value = float(m.group(1).replace(",", ".")) * _SCALE[m.group(2).lower()]
    return f"{value:.0f}" if value.is_integer() else f"{value:g}"


def words_to_digits(text: str, lang: str) -> str:
    """`text` with its spelled numbers as digits ("under fifty dollars" -> "under 50 dollars", "3 mil" -> "3000");
    words that do not form a valid number, and a lone "one"/"una", are left as they are."""
    lang = lang if lang in _WORDS else "en"
    text = _SCALED[lang].sub(_scaled, text)

    def convert(span: str) -> str:
        if span.lower() in _NOT_ALONE:
            return span
        candidate = re.sub(r"^an?\s+", "one ", span, flags=re.I)  # "a hundred" -> "one hundred"
        try:
            return str(text2num(candidate.lower(), lang))
        except ValueError:
            return span

    out, last = [], 0
    for start, end in _number_spans(text, lang):
        out += [text[last:start], convert(text[start:end])]
        last = end
    return "".join(out) + text[last:]


# A number as written in an amount: digits with optional separators, then an optional multiplier.
AMOUNT_NUMBER = r"\d+(?:[.,]\d+)*(?:\s*(?:k\b|mil\b|thousand\b|grand\b))?"
_MULTIPLIER = re.compile(r"\s*(k|mil|thousand|grand)$", re.I)


@lru_cache(maxsize=1024)
def parse_amount(text: str, decimal_separator: str | None = None) -> float | None:
    """A written amount ("1,299.99", "1.299,00", "25,50", "1.5k", "3 mil") as a float, or None.

    Separators are read by `price-parser` (a group of three digits after the last separator is a thousands
    group; anything else a decimal part) unless `decimal_separator` ("." or ",") says which it is."""
    number = text.strip()
    multiplier = 1.0
    if m := _MULTIPLIER.search(number):
        multiplier, number = 1000.0, number[: m.start()]
    price = Price.fromstring(number, decimal_separator=decimal_separator)
    if price.amount_float is None:
        return None
    return round(price.amount_float * multiplier, 2)
