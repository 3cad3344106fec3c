"""One shopper query -> a `SearchRequest`: price phrases become a price range, negations exclusions (terms and
colours), stock words a stock filter; request fillers ("I'm looking for", "busco"), politeness and currency
words go; quantities stay ("256GB", "65 inch"); Spanish shop words become English and English misspellings
are corrected against the catalog's words. None of the filter phrases is left in the text that gets
embedded or full-text searched."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from shopagent.domain import SearchFilters, SearchRequest
from shopagent.settings import Language
from shopagent.understanding.glossary import strip_fillers_es, translate_es
from shopagent.understanding.language import detect_language
from shopagent.understanding.negation import extract_negations
from shopagent.understanding.prices import BOUND_BEFORE, extract_price
from shopagent.understanding.quantities import overlaps, quantity_spans
from shopagent.understanding.spelling import correct
from shopagent.understanding.vocabulary import Vocabulary

_IN_STOCK = re.compile(r"\b(in[\s-]stock|available\s+now|available|en\s+stock|disponibles?|en\s+existencia)\b", re.I)
_EN_FILLER = re.compile(
    r"^\s*(?:hi|hello|hey)?[,!\s]*(?:i\s*'?\s*m\s+looking\s+for|i\s+am\s+looking\s+for|looking\s+for|"
    r"i\s+(?:want|need|would\s+like)|i'd\s+like|show\s+me|find\s+me|do\s+you\s+have|search\s+for|"
    r"can\s+you\s+find(?:\s+me)?|i\s+wanna|get\s+me)\s+(?:an?\s+|some\s+)?",
    re.I,
)
_ES_REQUEST = re.compile(
    r"^\s*(?:hola[,!\s]*)?(?:quiero|quisiera|busco|buscando|necesito|me\s+gustar[ií]a|mu[eé]strame|dame|tienes|"
    r"tienen|hay|me\s+puedes\s+(?:mostrar|recomendar))\s+(?:(?:un|una|unos|unas|algo\s+de|alg[uú]n|alguna)\s+)?",
    re.I,
)
_POLITENESS = re.compile(r"\b(please|pls|plz|thanks|thank\s+you|por\s+favor|gracias|porfa)\b", re.I)
# A bound written before a quantity ("with more than 128GB", "at least 20000mah", "de más de 2 litros"): the
# quantity stays as a search word, the comparison does not (it would full-text match "more" and "than").
_BOUND = re.compile(rf"\b(?:(?:with|con)\s+)?(?:{BOUND_BEFORE})\s+(?=\d)", re.I)
_ARTICLE = re.compile(r"^\s*(?:an?|the)\s+", re.I)
# Words that cannot end a search (left dangling once a price or a negation is cut out: "leggings with").
_DANGLING = re.compile(
    r"(?:\s+\b(?:with|and|or|but|for|in|of|that|which|con|y|o|pero|para|por|en|de|que)\b)+\s*$", re.I
)


def catalog_term(term: str, vocab: Vocabulary) -> str:
    """A translated exclusion term kept to the words the catalog knows ("perlas glass" -> "glass"), so an
    untranslatable word does not stop the rest from matching product names; unchanged when none is known."""
    if not vocab.words:
        return term
    known = [w for w in term.split() if w.lower() in vocab.words or w.lower().rstrip("s") in vocab.words]
    return " ".join(known) or term


def drop_bounds(text: str) -> str:
    """`text` without the comparison words before its quantities ("with more than 128GB" -> "128GB"); a bound
    before a bare number (not a quantity) is left alone."""
    quantities = quantity_spans(text)
    for m in reversed(list(_BOUND.finditer(text))):
        if overlaps((m.end(), m.end() + 1), quantities):
            text = text[: m.start()] + text[m.end() :]
    return text


def clean(text: str) -> str:
    """Collapse whitespace, trim punctuation and dangling connectives."""
    text = re.sub(r"\s+", " ", text).strip(" ,.;:-!?¿¡")
    text = _DANGLING.sub("", " " + text).strip(" ,.;:-!?¿¡")
    return re.sub(r"\s+([,.;:])", r"\1", text)


def parse_search(
    text: str,
    language: Language | None = None,
    vocab: Vocabulary | None = None,
    translate: Callable[[str], str] | None = None,
) -> SearchRequest:
    """Split a query into search text and filters (price range, exclusions, excluded colours, stock).

    `vocab` (the catalog's words and brands) sharpens language detection and corrects English misspellings;
    `translate` turns Spanish words into the catalog's English ones (default: the shop glossary alone)."""
    vocab = vocab or Vocabulary()
    original = unicodedata.normalize("NFC", text)
    lang = language or detect_language(original, vocab.words)
    price = extract_price(original, lang)
    negations = extract_negations(price.text)
    rest = negations.text
    in_stock = True if _IN_STOCK.search(rest) else None
    rest = _IN_STOCK.sub(" ", rest)
    rest = drop_bounds(_POLITENESS.sub(" ", _EN_FILLER.sub("", rest)))
    if lang == "en":
        rest = _ARTICLE.sub("", rest)
    terms = negations.terms
    native = clean(_ES_REQUEST.sub("", rest)) if lang == "es" else ""
    if lang == "es":
        rest = translate(strip_fillers_es(rest)) if translate else translate_es(rest)
        terms = [catalog_term(translate(t) if translate else translate_es(t), vocab) for t in terms]
    else:
        rest = correct(rest, vocab.words, vocab.brands)
    search_text = clean(rest) or clean(_POLITENESS.sub(" ", original))
    filters = SearchFilters(
        price_min=price.price_min,
        price_max=price.price_max,
        in_stock=in_stock,
        exclude_terms=tuple(t for t in terms if t),
        exclude_colors=tuple(negations.colors),
    )
    return SearchRequest(search_text, filters, lang, original, native or search_text)
