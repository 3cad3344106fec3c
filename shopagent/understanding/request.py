"""One shopper query -> a `SearchRequest`: price phrases and negations become filters, stock words a stock
filter, request fillers ("I'm looking for", "busco") go, Spanish shop words become English; none of that is
left in the text that gets embedded or full-text searched."""

from __future__ import annotations

import re
import unicodedata

from shopagent.domain import SearchFilters, SearchRequest
from shopagent.settings import Language
from shopagent.understanding.glossary import translate_es
from shopagent.understanding.language import detect_language
from shopagent.understanding.negation import extract_negations
from shopagent.understanding.prices import extract_price

_IN_STOCK = re.compile(r"\b(in[\s-]stock|available\s+now|available|en\s+stock|disponibles?|en\s+existencia)\b", re.I)

_EN_FILLER = re.compile(
    r"^\s*(?:hi|hello|hey)?[,!\s]*(?:i\s*'?\s*m\s+looking\s+for|i\s+am\s+looking\s+for|looking\s+for|"
    r"i\s+(?:want|need|would\s+like)|i'd\s+like|show\s+me|find\s+me|do\s+you\s+have|search\s+for|"
    r"can\s+you\s+find(?:\s+me)?|i\s+wanna|get\s+me)\s+(?:an?\s+|some\s+)?",
    re.I,
)


def _clean(text: str) -> str:
    """Collapse whitespace and dangling punctuation."""
    text = re.sub(r"\s+", " ", text)
    return text.strip(" ,.;:-!?¿¡")


def parse_search(text: str, language: Language | None = None) -> SearchRequest:
    """Split `text` into search text and filters (price range, exclusions, stock)."""
    original = unicodedata.normalize("NFC", text)
    lang = language or detect_language(original)
    lo, hi, rest = extract_price(original)
    negations, rest = extract_negations(rest)
    in_stock = True if _IN_STOCK.search(rest) else None
    rest = _IN_STOCK.sub(" ", rest)
    rest = _EN_FILLER.sub("", rest)
    if lang == "es":
        rest = translate_es(rest)
        negations = [translate_es(n) for n in negations]
    search_text = _clean(rest) or _clean(original)
    filters = SearchFilters(price_min=lo, price_max=hi, in_stock=in_stock, exclude_terms=tuple(negations))
    return SearchRequest(text=search_text, filters=filters, language=lang, original=original)
