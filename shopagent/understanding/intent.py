"""Intent rules (English and Spanish), references to shown products ("the second one", "1 and 3"), and the
embedding-based check that keeps off-topic questions out of product search."""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np

Intent = Literal["search", "refine", "details", "compare", "similar", "greeting", "help", "out_of_scope"]

_GREETING = re.compile(
    r"^\s*(hi|hello|hey|hiya|good\s+(morning|afternoon|evening)|hola|buenas|buenos\s+d[ií]as|buenas\s+(tardes|noches)|"
    r"thanks|thank\s+you|gracias|muchas\s+gracias)(\s+there)?[\s!.,]*$",
    re.I,
)
_HELP = re.compile(
    r"\b(help|what\s+can\s+you\s+do|how\s+does\s+this\s+work|what\s+do\s+you\s+do|ayuda|ay[uú]dame|"
    r"qu[eé]\s+puedes\s+hacer|c[oó]mo\s+funciona)\b",
    re.I,
)
_COMPARE = re.compile(
    r"\b(compare|comparison|versus|vs\.?|difference\s+between|which\s+(one\s+)?is\s+better|compar[ae]r?|compara|"
    r"comparaci[oó]n|diferencias?\s+entre|cu[aá]l\s+es\s+mejor)\b"
    # Superlatives over what is on screen: "which one is the cheapest?", "¿cuál tiene mejor calificación?".
    r"|\b(cheapest|least\s+expensive|lowest[-\s]priced?|best[-\s]rated|highest[-\s]rated|top[-\s]rated|"
    r"best\s+review(?:s|ed)?|most\s+popular|most\s+expensive)\b"
    r"|\bwhich\b.*\b(best|cheapest|lowest|highest|most|least|better)\b"
    r"|\bcu[aá]l(?:es)?\b.*\b(m[aá]s\s+barat[oa]s?|m[aá]s\s+econ[oó]mic[oa]s?|m[aá]s\s+car[oa]s?|mejor\w*|"
    r"m[aá]s\s+(?:popular|vendid[oa]))",
    re.I,
)
_SIMILAR = re.compile(
    r"\b(similar|more\s+like|like\s+(the|that|this|#?\d|it)|alike|resembl\w*|parecid[oa]s?|similares|"
    r"(otros|otras|m[aá]s)\s+como)\b",
    re.I,
)
_DETAILS = re.compile(
    r"\b(tell\s+me\s+(more|about)|more\s+(about|info|information|details)|details?|describe|what\s+about|"
    r"info(rmation)?\s+(on|about)|specs?|m[aá]s\s+(sobre|info|informaci[oó]n|detalles)|detalles|"
    r"cu[eé]ntame|h[aá]blame|dime\s+m[aá]s|informaci[oó]n|descr[ií]beme)\b",
    re.I,
)
_OUT_OF_SCOPE = re.compile(
    r"\b(weather|joke|news|president|capital\s+of|poem|homework|bitcoin|football|soccer\s+score|politics|"
    r"meaning\s+of\s+life|who\s+(won|is\s+the)|what\s+time\s+is\s+it|el\s+tiempo|qu[eé]\s+tiempo|chiste|noticias|"
    r"presidente|capital\s+de|poema|pol[ií]tica|qui[eé]n\s+gan[oó]|qu[eé]\s+hora\s+es)\b",
    re.I,
)
CHEAPER = re.compile(
    r"\b(cheaper|less\s+expensive|lower\s+price|more\s+affordable|budget|m[aá]s\s+barat[oa]s?|m[aá]s\s+econ[oó]mic[oa]s?|"
    r"menos\s+car[oa]s?)\b",
    re.I,
)
PRICIER = re.compile(r"\b(more\s+expensive|pricier|higher\s+end|premium|m[aá]s\s+car[oa]s?)\b", re.I)
ONLY = re.compile(
    r"\b(?:only|just|solo|s[oó]lo|solamente|from|by|de\s+la\s+marca|brand|marca)\s+([\w'&.-]+(?:\s+[\w'&.-]+){0,2})",
    re.I,
)
CATEGORY_CUE = re.compile(r"\b(?:category|categor[ií]a)\s+(?:of\s+|de\s+)?([\w' &-]+)", re.I)
# An explicit follow-up word: with one, leftover words narrow the previous search instead of starting anew.
REFINE_CUE = re.compile(r"\b(only|just|without|instead|but|solo|s[oó]lo|solamente|sin|pero|en\s+vez)\b", re.I)
# Words that carry no product meaning in a follow-up ("cheaper ones please").
FOLLOWUP_FILLER = re.compile(
    r"\b(show|me|ones?|those|them|these|it|please|something|anything|options?|items?|products?|instead|but|and|"
    r"any|some|with|the|a|an|in|of|what|about|how|i|want|need|muestra|mu[eé]strame|los|las|unos|unas|algo|"
    r"opciones|productos|en|y|con|pero|mejor|por|favor|quiero|que|sean|esos|esas|color|colour|cheaper|"
    r"less|expensive|more|pricier|m[aá]s|barat[oa]s?|econ[oó]mic[oa]s?|car[oa]s?|menos|only|just|solo|s[oó]lo|"
    r"solamente|cheap|hay|there|have|has|do|you|see|ver|veo|de|del|la|el|is|are|es|son|also|too|tambi[eé]n|"
    r"same|igual(?:es)?|mism[oa]s?|tienes|tienen|looking|for|busco|quiero|quisiera|necesito)\b",
    re.I,
)
# Starts a new search even when products are on screen ("I'm looking for ...", "busco ...").
NEW_SEARCH = re.compile(
    r"\b(looking\s+for|i\s+(want|need|would\s+like)|i'd\s+like|search\s+for|find\s+me|do\s+you\s+have|"
    r"busco|buscando|quiero|quisiera|necesito|tienes|tienen)\b",
    re.I,
)

_ORDINALS = {
    "first": 0,
    "1st": 0,
    "primero": 0,
    "primera": 0,
    "primer": 0,
    "second": 1,
    "2nd": 1,
    "segundo": 1,
    "segunda": 1,
    "third": 2,
    "3rd": 2,
    "tercero": 2,
    "tercera": 2,
    "tercer": 2,
    "fourth": 3,
    "4th": 3,
    "cuarto": 3,
    "cuarta": 3,
    "fifth": 4,
    "5th": 4,
    "quinto": 4,
    "quinta": 4,
    "sixth": 5,
    "6th": 5,
    "sexto": 5,
    "sexta": 5,
}
_LAST = re.compile(r"\b(last|[uú]ltim[oa])\b", re.I)
_ORDINAL_RE = re.compile(r"\b(" + "|".join(_ORDINALS) + r")\b", re.I)
_NUMBER_REF = re.compile(r"(?<![$\d.,])#?\b([1-9])\b(?!\s*(?:\$|usd|dollars?|d[oó]lares|%|\.\d))", re.I)
PRICE_NUMBERS = re.compile(r"\$\s*\d+(?:[.,]\d+)?|\d+(?:[.,]\d+)?\s*(?:\$|usd|dollars?|d[oó]lares|euros?)", re.I)


# What a question about a shown product asks ("what brand is the second one?", "¿cuánto cuesta la primera?").
_FACETS = {
    "brand": re.compile(r"\b(brand|make[sr]?|manufacturer|marca|fabricante)\b", re.I),
    "price": re.compile(
        r"\b(price|prices|cost|costs|how\s+much|cheap\w*|expensive|precio|cu[aá]nto|cuesta|vale|barat\w*|"
        r"econ[oó]mic\w*|car[oa]s?)\b",
        re.I,
    ),
    "color": re.compile(r"\b(colou?rs?|colores)\b", re.I),
    "rating": re.compile(r"\b(rating|rated|reviews?|stars?|calificaci[oó]n|valoraci[oó]n|opiniones|estrellas)\b", re.I),
}


def facet(text: str) -> str | None:
    """The attribute a question about shown products asks for, if it names one."""
    return next((name for name, pattern in _FACETS.items() if pattern.search(text)), None)


def references(text: str, n_shown: int) -> list[int]:
    """0-based positions of shown products the message points at, in order of mention."""
    cleaned = PRICE_NUMBERS.sub(" ", text)
    found: list[tuple[int, int]] = []
    for m in _ORDINAL_RE.finditer(cleaned):
        found.append((m.start(), _ORDINALS[m.group(1).lower()]))
    for m in _NUMBER_REF.finditer(cleaned):
        found.append((m.start(), int(m.group(1)) - 1))
    if n_shown:
        for m in _LAST.finditer(cleaned):
            found.append((m.start(), n_shown - 1))
    refs = [i for _, i in sorted(found) if 0 <= i < max(n_shown, 1) or not n_shown]
    return list(dict.fromkeys(refs))


def classify(text: str, n_shown: int) -> Intent:
    """Intent by rules, most specific first."""
    has_shown = n_shown > 0
    if _GREETING.match(text):
        return "greeting"
    if _HELP.search(text) and len(text.split()) <= 8:
        return "help"
    if _OUT_OF_SCOPE.search(text):
        return "out_of_scope"
    if has_shown and _COMPARE.search(text):
        return "compare"
    if has_shown and _SIMILAR.search(text):
        return "similar"
    if has_shown and _DETAILS.search(text):
        return "details"
    refs = has_shown and references(text, n_shown) and not PRICE_NUMBERS.search(text)
    if refs and (len(text.split()) <= 4 or looks_like_question(text) or facet(text)):
        return "details"  # "the second one?", "¿y el tercero?", "what brand is the second one?"
    return "search"


# ---------------------------------------------------------------- embedding-based scope check

SHOPPING_EXAMPLES = [
    "I'm looking for running shoes",
    "do you have a water bottle for kids",
    "what is a good gift for a coffee lover",
    "which headphones are best for the gym",
    "how much is a leather belt",
    "busco zapatos de cuero",
    "¿tienen mochilas para la escuela?",
    "what should I buy for camping",
    "is there a cheap phone case",
]
OUT_OF_SCOPE_EXAMPLES = [
    "what is the weather tomorrow",
    "who won the game last night",
    "tell me a joke",
    "what is the capital of France",
    "how do I fix this python error",
    "explain quantum physics",
    "what's the meaning of life",
    "¿quién es el presidente?",
    "¿qué hora es?",
    "write me a poem about love",
    "how old are you",
]
_QUESTION = re.compile(
    r"\?\s*$|^\s*(what|who|why|when|where|how|which|is|are|can|could|qu[eé]|qui[eé]n|por\s*qu[eé]|cu[aá]ndo|"
    r"d[oó]nde|c[oó]mo|cu[aá]l)\b",
    re.I,
)
OUT_OF_SCOPE_MARGIN = 0.05
OUT_OF_SCOPE_MIN = 0.4


def looks_like_question(text: str) -> bool:
    """Questions are where off-topic requests hide; plain product phrases skip the embedding check."""
    return bool(_QUESTION.search(text))


def out_of_scope_by_embedding(vec: list[float], shopping: Any, off_topic: Any) -> bool:
    """True when the message is closer to off-topic examples than to shopping ones (by a margin)."""
    q = np.asarray(vec, dtype=np.float32)
    best_off = float((off_topic @ q).max())
    return best_off >= OUT_OF_SCOPE_MIN and best_off > float((shopping @ q).max()) + OUT_OF_SCOPE_MARGIN
