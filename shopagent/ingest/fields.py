"""Cleaning feed values: each function takes a raw value as a feed gives it (any JSON or CSV type, or a source
database's value), returns one that PostgreSQL, Chroma and JSON can hold, and appends an `Issue` for what it
changed or dropped. None of them raises on bad data.

Prices are parsed by price-parser (decimal commas, thousands separators, currency symbols and codes), with the
feed's decimal separator (from its locale, by Babel) for ambiguous ones, after the checks price-parser does not
make: signs, infinities, exponents.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shopagent.ingest.issues import Issue, Issues, Reason
from shopagent.text import CONTROL_CHARACTERS, LONE_SURROGATES

_NON_FINITE = re.compile(r"[+-]?\s*(inf|infinity|nan)", re.IGNORECASE)
_EXPONENT = re.compile(r"\d+(?:\.\d+)?[eE][+-]?\d+")
_MINUS = frozenset("-\u2212\u2012\u2013")  # hyphen-minus, minus sign, figure dash, en dash
_TRUE = frozenset({"1", "true", "yes", "y", "t", "on"})
_FALSE = frozenset({"0", "false", "no", "n", "f", "off"})
_SYMBOL_LOCALES = ("en", "es", "fr", "de", "pt", "it", "ja", "zh")
_URL = re.compile(r"(https?:)?//\S+", re.IGNORECASE)
TEXT_SCALARS = (str, int, float, Decimal)


def scrub(text: str, field: str | None, issues: Issues) -> str:
    """`text` without control characters and lone surrogates (replaced by U+FFFD), noting either repair, in Unicode
    NFC as the API cleans shoppers' messages (`shopagent.text.clean_text`), so both search alike."""
    if CONTROL_CHARACTERS.search(text):
        text = CONTROL_CHARACTERS.sub("", text)
        issues.append(Issue("repaired", "control_characters", field))
    if LONE_SURROGATES.search(text):
        text = LONE_SURROGATES.sub("\ufffd", text)
        issues.append(Issue("repaired", "invalid_unicode", field))
    return unicodedata.normalize("NFC", text)


def finite(value: float | Decimal) -> bool:
    """Not NaN or infinite (Decimal's signalling NaN included, which `math.isfinite` cannot take)."""
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)


def _scalar_text(value: Any) -> str | None:
    """A scalar as text (None for what is not a finite scalar)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | Decimal) and not finite(value):
        return None
    return str(value) if isinstance(value, TEXT_SCALARS) else None


def clean_text(value: Any, field: str, issues: Issues) -> str:
    """Text for a text field ("" for null). A number or a list of scalars is taken as text (`coerced_type`); an
    object or a non-finite number is dropped (`wrong_type`)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return scrub(value, field, issues).strip()
    if isinstance(value, list | tuple) and all(_scalar_text(v) is not None for v in value if v is not None):
        text = " ".join(t for v in value if v is not None and (t := _scalar_text(v)))
    elif (text_or_none := _scalar_text(value)) is not None:
        text = text_or_none
    else:
        issues.append(Issue("nulled", "wrong_type", field, type(value).__name__))
        return ""
    issues.append(Issue("repaired", "coerced_type", field, type(value).__name__))
    return scrub(text, field, issues).strip()


def clean_optional(value: Any, field: str, issues: Issues) -> str | None:
    """`clean_text`, with "" as None."""
    return clean_text(value, field, issues) or None


def clean_list(value: Any, field: str, issues: Issues) -> list[str]:
    """A list of non-empty strings from a list, a JSON-array string or a '|'-separated string; scalar items are
    taken as text, nested objects dropped."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        items: Any = None
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError:
                items = None
        value = items if isinstance(items, list) else text.split("|")
    if not isinstance(value, list | tuple):
        if _scalar_text(value) is None:
            issues.append(Issue("nulled", "wrong_type", field, type(value).__name__))
            return []
        value = [value]
    out: list[str] = []
    for item in value:
        if item is None:
            continue
        item_text = item if isinstance(item, str) else _scalar_text(item)
        if item_text is None:
            issues.append(Issue("nulled", "wrong_type", field, f"item of type {type(item).__name__}"))
            continue
        if not isinstance(item, str):
            issues.append(Issue("repaired", "coerced_type", field, f"item of type {type(item).__name__}"))
        if cleaned := scrub(item_text, field, issues).strip():
            out.append(cleaned)
    return out


def _number(value: Any) -> float | None:
    """A float from a number or a numeric string ("4,5" as 4.5; "1,234" as 1234); None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal):
        return float(value) if finite(value) else math.nan
    if not isinstance(value, str):
        return None
    text = value.strip().replace("\u00a0", "").replace(" ", "")
    if text.count(",") == 1 and "." not in text and len(text.split(",")[1]) != 3:
        text = text.replace(",", ".")  # a decimal comma: "4,5"
    else:
        text = text.replace(",", "")  # thousands separators: "1,234"
    try:
        return float(text)
    except ValueError:
        return None


def clean_number(
    value: Any, field: str, issues: Issues, *, low: float, high: float, integer: bool = False
) -> float | None:
    """A finite number in [low, high] (a whole one when `integer`), else None with a warning."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = _number(value)
    if number is None or not math.isfinite(number) or (integer and number != int(number)):
        issues.append(Issue("nulled", "number_unparseable", field, repr(value)[:60]))
        return None
    if not low <= number <= high:
        issues.append(Issue("nulled", "number_out_of_range", field, f"{number:g} not in [{low:g}, {high:g}]"))
        return None
    return number


def clean_bool(value: Any, field: str, default: bool, issues: Issues) -> bool:
    """Booleans from JSON or CSV spellings; anything else is the default, with a warning."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = _scalar_text(value)
    key = (text or "").strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    issues.append(Issue("nulled", "bool_unparseable", field, repr(value)[:60]))
    return default


def clean_url(value: Any, field: str, issues: Issues) -> str | None:
    """An http(s) or protocol-relative URL (what a page can show as an image), else None with a warning."""
    text = clean_text(value, field, issues)
    if not text:
        return None
    if not _URL.fullmatch(text):
        issues.append(Issue("nulled", "url_invalid", field, text[:60]))
        return None
    return text


def clean_json(value: Any, field: str, issues: Issues) -> Any:
    """A JSON value jsonb can hold: strings scrubbed (keys too), non-finite numbers as null, other types as text."""
    if isinstance(value, str):
        return scrub(value, field, issues)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        if finite(value):
            return float(value)
        issues.append(Issue("nulled", "number_unparseable", field, str(value)))
        return None
    if isinstance(value, dict):
        return {scrub(str(k), field, issues): clean_json(v, field, issues) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v, field, issues) for v in value]
    return scrub(str(value), field, issues)


# ---------------------------------------------------------------- prices


@dataclass(frozen=True)
class PriceRules:
    """How a feed writes prices: its decimal separator when known, its currency (ISO code and the symbols that
    mean it) when known, and the largest believable price."""

    decimal_separator: str | None = None
    currency: str | None = None
    currency_symbols: frozenset[str] = frozenset()
    max_price: float = 1_000_000.0


def price_rules(locale: str | None, currency: str | None, max_price: float) -> PriceRules:
    """Rules for a feed's locale (a Babel name: en_US, de_DE, fr...) and currency code; ValueError for an unknown
    locale or currency."""
    from babel import Locale, UnknownLocaleError
    from babel.numbers import get_currency_symbol, get_decimal_symbol, is_currency

    separator = None
    locale = locale.replace("-", "_") if locale else None
    if locale:
        try:
            separator = get_decimal_symbol(Locale.parse(locale))
        except (UnknownLocaleError, ValueError) as exc:
            raise ValueError(f"unknown price locale {locale!r} (use a locale name such as en_US or de_DE)") from exc
    symbols: set[str] = set()
    if currency:
        if not is_currency(currency):
            raise ValueError(f"unknown currency {currency!r} (use an ISO 4217 code such as USD or EUR)")
        # How a few large locales write it ("$", "US$", "$US"...), and the feed's own.
        symbols = {currency.upper()} | {
            get_currency_symbol(currency, loc) for loc in (*_SYMBOL_LOCALES, locale or "en")
        }
    return PriceRules(separator, currency, frozenset(s.upper() for s in symbols), max_price)


def _null_price(issues: Issues, reason: Reason, value: Any) -> float | None:
    """Record an unusable price; the price is then None."""
    issues.append(Issue("nulled", reason, "price", repr(value)[:60]))
    return None


def parse_price(value: Any, rules: PriceRules, issues: Issues) -> float | None:
    """A finite price in [0, rules.max_price], rounded to cents, or None (with a warning unless it was empty).

    Numbers are taken as they are; text goes through price-parser ("25,50" -> 25.5, "1.299,00" -> 1299,
    "$1,299.00" -> 1299, "EUR 12,99" -> 12.99) after the checks it does not make: a minus sign before the
    amount, "Infinity"/"NaN", exponents ("1e12"), and a currency other than the feed's."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return _null_price(issues, "price_unparseable", value)
    if isinstance(value, int | float | Decimal):
        amount = float(value) if finite(value) else math.nan
    elif isinstance(value, str):
        parsed = _parse_price_text(value, rules, issues)
        if parsed is None:
            return None
        amount = parsed
    else:
        return _null_price(issues, "price_unparseable", value)
    if not math.isfinite(amount):
        return _null_price(issues, "price_not_finite", value)
    if amount < 0:
        return _null_price(issues, "price_negative", value)
    if amount > rules.max_price:
        return _null_price(issues, "price_out_of_range", value)
    return round(amount, 2)


def _parse_price_text(text: str, rules: PriceRules, issues: Issues) -> float | None:
    """The amount written in `text` (negative amounts keep their sign), or None with a warning."""
    from price_parser import Price

    text = CONTROL_CHARACTERS.sub("", LONE_SURROGATES.sub("", text)).strip()
    if _NON_FINITE.search(text) and not re.search(r"\d", text):
        return _null_price(issues, "price_not_finite", text)
    head = re.split(r"\d", text, maxsplit=1)[0]
    sign = -1.0 if any(c in _MINUS for c in head) or (text.startswith("(") and text.endswith(")")) else 1.0
    if exponent := _EXPONENT.search(text):
        return sign * float(exponent.group())
    try:
        # No currency hint: it would make price-parser report the feed's currency for "USD 5".
        price = Price.fromstring(text, decimal_separator=rules.decimal_separator)
    except Exception:  # noqa: BLE001 - a third-party parser on arbitrary text: any failure means "no price"
        price = None
    if price is None or price.amount is None:
        return _null_price(issues, "price_unparseable", text)
    if rules.currency and price.currency and price.currency.strip().upper() not in rules.currency_symbols:
        return _null_price(issues, "price_currency_mismatch", text)
    return sign * float(price.amount)
