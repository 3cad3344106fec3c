"""Query understanding for retrieval (English and Spanish): price phrases become filters, negated
phrases become exclusions, and neither is left in the text that gets embedded or full-text searched."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from shopagent.models import SearchFilters

_NUM = r"(\d{1,3}(?:[,.]\d{3})+|\d+(?:[.,]\d{1,2})?)\s*(k\b)?"
_CUR = r"(?:us\s*)?(?:\$|usd|dollars?|d[oó]lares|eur|€|euros?|pesos?|mxn)?"
_AMOUNT = rf"{_CUR}\s*{_NUM}\s*{_CUR}"

# (pattern, kind): kind is "max", "min" or "range". Order matters: ranges first.
_PRICE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\b(?:between|from|entre|de)\s+{_AMOUNT}\s+(?:and|to|y|a|hasta)\s+{_AMOUNT}", re.I), "range"),
    (re.compile(rf"{_CUR}\s*{_NUM}\s*{_CUR}\s*(?:-|–|to)\s*{_AMOUNT}(?=\s|$)", re.I), "range_bare"),
    (
        re.compile(
            rf"(?:\b(?:under|below|less\s+than|cheaper\s+than|at\s+most|max(?:imum)?|up\s+to|no\s+more\s+than|"
            rf"within|menos\s+de|menor\s+(?:a|que)|por\s+debajo\s+de|hasta|m[aá]ximo|no\s+m[aá]s\s+de|"
            rf"m[aá]s\s+barato\s+que)|<=?)\s*{_AMOUNT}",
            re.I,
        ),
        "max",
    ),
    (
        re.compile(
            rf"(?:\b(?:over|above|more\s+than|at\s+least|min(?:imum)?|starting\s+at|m[aá]s\s+de|mayor\s+(?:a|que)|"
            rf"por\s+encima\s+de|m[ií]nimo|desde)|>=?)\s*{_AMOUNT}",
            re.I,
        ),
        "min",
    ),
]
# A bare "$30" with no comparison word is a target, not a filter; we leave it in the text.

_NEGATION = re.compile(
    r"\b(?:without|w/o|sin|excluding|except|not|no|but\s+not|free\s+of|minus)\s+"
    r"((?:(?!\b(?:and|with|for|in|y|con|para|en|but|under|below|over|menos|m[aá]s)\b)[\w'./-]+\s*){1,2})",
    re.I,
)
# "libre de azúcar" is "sugar free": kept as positive text, since products say so in their names.
_LIBRE_DE = re.compile(r"\blibres?\s+de\s+([\w'-]+)", re.I)
_NOT_NEGATIONS = {"no": {"more", "less", "matter", "longer", "tax"}}  # "no more than $50" is a price

_IN_STOCK = re.compile(r"\b(in[\s-]stock|available\s+now|available|en\s+stock|disponibles?|en\s+existencia)\b", re.I)

# Spanish shop words the English catalog (and English embedding model) understands better in English.
_ES_EN = {
    "zapatos": "shoes", "zapato": "shoe", "zapatillas": "sneakers", "tenis": "sneakers", "botas": "boots",
    "cordones": "laces", "azúcar": "sugar", "azucar": "sugar", "camisa": "shirt", "camisas": "shirts",
    "camiseta": "t-shirt", "pantalones": "pants", "vestido": "dress", "chaqueta": "jacket",
    "mochila": "backpack", "bolso": "bag", "reloj": "watch", "auriculares": "headphones",
    "audífonos": "headphones", "audifonos": "headphones", "computadora": "computer", "portátil": "laptop",
    "portatil": "laptop", "teléfono": "phone", "telefono": "phone", "celular": "cell phone",
    "funda": "case", "cargador": "charger", "cable": "cable", "silla": "chair", "mesa": "table",
    "sofá": "sofa", "sofa": "sofa", "cama": "bed", "colchón": "mattress", "colchon": "mattress",
    "lámpara": "lamp", "lampara": "lamp", "cocina": "kitchen", "botella": "bottle", "agua": "water",
    "taza": "mug", "libro": "book", "libros": "books", "juguete": "toy", "juguetes": "toys",
    "niños": "kids", "niño": "kid", "niña": "girl", "bebé": "baby", "bebe": "baby", "mujer": "women",
    "hombre": "men", "hombres": "men", "rojo": "red", "roja": "red", "azul": "blue",
    "negro": "black", "negra": "black", "blanco": "white", "blanca": "white", "verde": "green",
    "amarillo": "yellow", "rosa": "pink", "gris": "gray", "cuero": "leather", "piel": "leather",
    "madera": "wood", "acero": "steel", "inoxidable": "stainless", "barato": "cheap", "barata": "cheap",
    "gamer": "gaming", "juegos": "games", "cepillo": "brush", "champú": "shampoo", "champu": "shampoo",
    "cinturón": "belt", "cinturon": "belt", "hebilla": "buckle", "pajita": "straw", "popote": "straw",
    "tapa": "lid", "tapas": "lids", "herramientas": "tools", "taladro": "drill", "brocas": "drill bits",
    "pilas": "batteries", "baterías": "batteries", "terciopelo": "velvet", "pantalla": "screen",
    "teclado": "keyboard", "ratón": "mouse", "raton": "mouse", "impresora": "printer",
    "cafetera": "coffee maker", "café": "coffee", "cafe": "coffee", "gafas": "glasses",
    "lentes": "glasses", "sombrero": "hat", "gorra": "cap", "calcetines": "socks", "guantes": "gloves",
    "perro": "dog", "perros": "dogs", "gato": "cat", "gatos": "cats", "mascota": "pet", "mascotas": "pets",
    "comedero": "bowl", "comida": "food", "correa": "leash", "collar": "collar", "juego": "game",
    "pelota": "ball", "bolsa": "bag", "bolsas": "bags", "vaso": "glass", "vasos": "glasses",
    "copa": "glass", "copas": "glasses", "vino": "wine", "cuchillo": "knife", "cuchillos": "knives",
    "manta": "blanket", "cobija": "blanket", "almohada": "pillow", "toalla": "towel", "jabón": "soap",
    "jabon": "soap", "crema": "cream", "maquillaje": "makeup", "uñas": "nails", "pelo": "hair",
    "cabello": "hair", "luces": "lights", "luz": "light", "ventilador": "fan", "techo": "ceiling", "pared": "wall",
    "escritorio": "desk", "ruedas": "wheels", "tijeras": "scissors", "papel": "paper", "cuaderno": "notebook",
    "agenda": "planner", "lápiz": "pencil", "lapiz": "pencil", "bolígrafo": "pen", "boligrafo": "pen",
    "rotura": "breakage", "anti": "anti", "rojos": "red", "rojas": "red", "azules": "blue",
    "negros": "black", "negras": "black", "blancos": "white", "blancas": "white", "verdes": "green",
    "mujeres": "women", "pantuflas": "slippers", "sandalias": "sandals",
    "amarilla": "yellow", "rosas": "pink", "grises": "gray", "marrón": "brown", "marron": "brown",
    "morado": "purple", "morada": "purple", "naranja": "orange", "plateado": "silver", "dorado": "gold",
    "dorada": "gold", "tacones": "heels", "para": "for", "con": "with", "y": "and", "bañador": "swimsuit",
    "cinta": "tape",
}  # fmt: skip
_ES_FILLER = re.compile(
    r"\b(quiero|quisiera|busco|buscando|necesito|me\s+gustar[ií]a|mu[eé]strame|dame|un|una|unos|unas|el|la|"
    r"los|las|de|del|por\s+favor|algo|alg[uú]n|alguna)\b",
    re.I,
)
_EN_FILLER = re.compile(
    r"^\s*(?:hi|hello|hey)?[,!\s]*(?:i\s*'?\s*m\s+looking\s+for|i\s+am\s+looking\s+for|looking\s+for|"
    r"i\s+(?:want|need|would\s+like)|i'd\s+like|show\s+me|find\s+me|do\s+you\s+have|search\s+for|"
    r"can\s+you\s+find(?:\s+me)?|i\s+wanna|get\s+me)\s+(?:an?\s+|some\s+)?",
    re.I,
)
_SPANISH_HINT = re.compile(
    r"\b(quiero|busco|necesito|sin|para|barat[oa]s?|m[aá]s|menos|zapatos|hola|gracias|una|unos|del|"
    r"cu[aá]nto|qu[eé]|c[oó]mo|dame|mu[eé]strame|tienes|tienen|el|la|los|las|y|con|de)\b|[áéíóúñ¿¡]",
    re.I,
)


# Words spelt the same in both languages: no evidence either way.
_SHARED_WORDS = frozenset({"cable", "sofa", "anti", "collar", "agenda", "tenis", "gamer", "piel", "rosa"})


@dataclass
class ParsedQuery:
    """A shopper query split into what to search for and what to filter on."""

    original: str
    text: str
    filters: SearchFilters = field(default_factory=SearchFilters)
    language: str = "en"


def detect_language(text: str) -> str:
    """'es' or 'en', by Spanish function words and accents (enough for routing and templates)."""
    hits = len(_SPANISH_HINT.findall(text))
    # A Spanish shop word counts too ("champú tresemme anti rotura" has no function word).
    hits += sum(1 for w in re.findall(r"[\wáéíóúñü]+", text.lower()) if w in _ES_EN and w not in _SHARED_WORDS)
    return "es" if hits >= 2 or re.search(r"[¿¡ñ]", text) or (hits == 1 and len(text.split()) <= 3) else "en"


def _amount(number: str, k_suffix: str | None) -> float:
    """'1,299.99' / '1.299' / '49,90' / '2k' -> float."""
    n = number
    if re.fullmatch(r"\d{1,3}(?:[,.]\d{3})+", n):
        n = re.sub(r"[,.]", "", n)
    else:
        n = n.replace(",", ".")
    value = float(n)
    return value * 1000 if k_suffix else value


def extract_price(text: str) -> tuple[float | None, float | None, str]:
    """(min, max, text without the price phrase)."""
    lo = hi = None
    for pattern, kind in _PRICE_PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        g = m.groups()
        if kind in ("range", "range_bare"):
            a, b = _amount(g[0], g[1]), _amount(g[2], g[3])
            lo, hi = min(a, b), max(a, b)
        elif kind == "max":
            hi = _amount(g[0], g[1])
        else:
            lo = _amount(g[0], g[1])
        text = (text[: m.start()] + " " + text[m.end() :]).strip()
        if kind.startswith("range"):
            break
    return lo, hi, text


def extract_negations(text: str) -> tuple[list[str], str]:
    """(negated phrases, text without them)."""
    terms: list[str] = []

    def keep(m: re.Match[str]) -> str:
        word = m.group(0).split()[0].lower()
        phrase = m.group(1).strip(" ,.;")
        words = phrase.split()
        if word in _NOT_NEGATIONS and words[0].lower() in _NOT_NEGATIONS[word]:
            return m.group(0)
        # Two words are negated only at the end of the query ("without glass beads"); with more
        # words after them the second starts what is wanted ("without prejudice shirt" -> "shirt").
        if len(words) == 2 and re.search(r"\w", m.string[m.end() :]):
            terms.append(words[0])
            return f" {words[1]} "
        terms.append(phrase)
        return " "

    rest = _NEGATION.sub(keep, text)
    # "listen without prejudice shirt": when a two-word negation would leave a single word to
    # search for, its last word is what is wanted (a product type), not part of the negation.
    if len(terms) == 1 and len(terms[0].split()) == 2 and len(rest.split()) <= 1:
        negated, wanted = terms[0].split()
        terms[0] = negated
        rest = f"{rest} {wanted}"
    text = rest
    text = _LIBRE_DE.sub(lambda m: f"{m.group(1)} free", text)
    return [t for t in terms if t], text


ENGLISH_COLORS = frozenset(
    "red blue black white green yellow pink gray brown tan beige purple orange silver gold navy".split()
)


def color_words() -> dict[str, str]:
    """Colour words in English and Spanish -> the English colour (for colour filters)."""
    return (
        {c: c for c in ENGLISH_COLORS}
        | {"grey": "gray"}
        | {es: en for es, en in _ES_EN.items() if en in ENGLISH_COLORS}
    )


def translate_es(text: str) -> str:
    """Word-level Spanish->English for shop vocabulary; unknown words are kept."""
    text = _ES_FILLER.sub(" ", text)
    return " ".join(_ES_EN.get(w.lower(), w) for w in text.split())


def _clean(text: str) -> str:
    """Collapse whitespace and dangling punctuation."""
    text = re.sub(r"\s+", " ", text)
    return text.strip(" ,.;:-!?¿¡")


def parse_query(text: str, language: str | None = None) -> ParsedQuery:
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
    return ParsedQuery(original=original, text=search_text, filters=filters, language=lang)


_NEGATORS = r"(?:without|w/o|no|non|not|free\s+of|sin|zero|absent)"


def _term_regex(term: str, boundary: str) -> str:
    """Words of `term` in order (plural/suffix tolerant), each escaped."""
    words = [re.escape(w.lower().rstrip("s") or w.lower()) for w in re.findall(r"[\w'./-]+", term)]
    return r"\W+(?:\w+\W+){0,2}".join(f"{boundary}{w}\\w*" for w in words)


def exclusion_patterns(term: str, boundary: str = r"\b") -> tuple[str, str]:
    """(mentions, negated mention) regexes for a negated term, applied to product names.

    A product is excluded when its name mentions the term, unless the name itself negates it
    ("Belt without Buckle", "Sugar-Free Gum"): those are exactly what the shopper asked for.
    `boundary` is `\b` for Python and `\y` for PostgreSQL regexes.
    """
    body = _term_regex(term, boundary)
    negated = rf"{boundary}{_NEGATORS}\W+(?:\w+\W+){{0,2}}?{body}|{body}\W*(?:free|less){boundary}"
    return body, negated


def name_negates(name: str, terms: tuple[str, ...]) -> bool:
    """True when the name itself says it lacks a negated term ("Desk Chair, No Wheels"): an explicit match."""
    return any(re.search(exclusion_patterns(term)[1], name, re.I) for term in terms)


def name_is_excluded(name: str, terms: tuple[str, ...]) -> bool:
    """Python twin of the SQL exclusion (used where filtering happens outside PostgreSQL)."""
    for term in terms:
        mention, negated = exclusion_patterns(term)
        if re.search(mention, name, re.I) and not re.search(negated, name, re.I):
            return True
    return False
