"""Which language a shopper writes in ('en' or 'es'): Spanish function words, accents and shop words, with the
conversation's previous language deciding messages that carry no signal ("UGG?", "2")."""

from __future__ import annotations

import re

from shopagent.settings import Language
from shopagent.understanding.glossary import ES_EN, SHARED_WORDS

_SPANISH_HINT = re.compile(
    r"\b(quiero|busco|necesito|sin|para|barat[oa]s?|m[aá]s|menos|zapatos|hola|gracias|una|unos|del|"
    r"cu[aá]nto|qu[eé]|c[oó]mo|dame|mu[eé]strame|tienes|tienen|el|la|los|las|y|con|de)\b|[áéíóúñ¿¡]",
    re.I,
)

_SPANISH_EXTRA = re.compile(
    r"\b(parecid[oa]s?|primer[oa]?|segund[oa]|tercer[oa]?|[uú]ltim[oa]|cu[eé]ntame|h[aá]blame|compara|algo|al|"
    r"solo|s[oó]lo|marca|rojo|roja|negro|negra|azul|otros?|otras?)\b",
    re.I,
)
_ENGLISH_HINT = re.compile(
    r"\b(the|and|with|for|show|more|cheaper|only|just|compare|tell|me|please|one|ones|i|what|hi|hello|about|"
    r"like|without|in|similar|details)\b",
    re.I,
)


def detect_language(text: str) -> Language:
    """'es' or 'en', by Spanish function words and accents (enough for routing and templates)."""
    hits = len(_SPANISH_HINT.findall(text))
    # A Spanish shop word counts too ("champú tresemme anti rotura" has no function word).
    hits += sum(1 for w in re.findall(r"[\wáéíóúñü]+", text.lower()) if w in ES_EN and w not in SHARED_WORDS)
    return "es" if hits >= 2 or re.search(r"[¿¡ñ]", text) or (hits == 1 and len(text.split()) <= 3) else "en"


def message_language(text: str, previous: str | None = None) -> Language:
    """'es' or 'en'; a message with no language signal ("UGG?", "2") keeps the previous language."""
    lang = detect_language(text)
    if lang == "en" and not _ENGLISH_HINT.search(text) and (previous == "es" or _SPANISH_EXTRA.search(text)):
        return "es"
    return lang
