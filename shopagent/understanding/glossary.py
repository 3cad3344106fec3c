"""Spanish shop vocabulary: word-level Spanish -> English for the English catalog and embedding model, and
colour words in both languages."""

from __future__ import annotations

import re

# Spanish shop words the English catalog (and English embedding model) understands better in English.
ES_EN = {
    "zapatos": "shoes",
    "zapato": "shoe",
    "zapatillas": "sneakers",
    "tenis": "sneakers",
    "botas": "boots",
    "cordones": "laces",
    "azúcar": "sugar",
    "azucar": "sugar",
    "camisa": "shirt",
    "camisas": "shirts",
    "camiseta": "t-shirt",
    "pantalones": "pants",
    "vestido": "dress",
    "chaqueta": "jacket",
    "mochila": "backpack",
    "bolso": "bag",
    "reloj": "watch",
    "auriculares": "headphones",
    "audífonos": "headphones",
    "audifonos": "headphones",
    "computadora": "computer",
    "portátil": "laptop",
    "portatil": "laptop",
    "teléfono": "phone",
    "telefono": "phone",
    "celular": "cell phone",
    "funda": "case",
    "cargador": "charger",
    "cable": "cable",
    "silla": "chair",
    "mesa": "table",
    "sofá": "sofa",
    "sofa": "sofa",
    "cama": "bed",
    "colchón": "mattress",
    "colchon": "mattress",
    "lámpara": "lamp",
    "lampara": "lamp",
    "cocina": "kitchen",
    "botella": "bottle",
    "agua": "water",
    "taza": "mug",
    "libro": "book",
    "libros": "books",
    "juguete": "toy",
    "juguetes": "toys",
    "niños": "kids",
    "niño": "kid",
    "niña": "girl",
    "bebé": "baby",
    "bebe": "baby",
    "mujer": "women",
    "hombre": "men",
    "hombres": "men",
    "rojo": "red",
    "roja": "red",
    "azul": "blue",
    "negro": "black",
    "negra": "black",
    "blanco": "white",
    "blanca": "white",
    "verde": "green",
    "amarillo": "yellow",
    "rosa": "pink",
    "gris": "gray",
    "cuero": "leather",
    "piel": "leather",
    "madera": "wood",
    "acero": "steel",
    "inoxidable": "stainless",
    "barato": "cheap",
    "barata": "cheap",
    "gamer": "gaming",
    "juegos": "games",
    "cepillo": "brush",
    "champú": "shampoo",
    "champu": "shampoo",
    "cinturón": "belt",
    "cinturon": "belt",
    "hebilla": "buckle",
    "pajita": "straw",
    "popote": "straw",
    "tapa": "lid",
    "tapas": "lids",
    "herramientas": "tools",
    "taladro": "drill",
    "brocas": "drill bits",
    "pilas": "batteries",
    "baterías": "batteries",
    "terciopelo": "velvet",
    "pantalla": "screen",
    "teclado": "keyboard",
    "ratón": "mouse",
    "raton": "mouse",
    "impresora": "printer",
    "cafetera": "coffee maker",
    "café": "coffee",
    "cafe": "coffee",
    "gafas": "glasses",
    "lentes": "glasses",
    "sombrero": "hat",
    "gorra": "cap",
    "calcetines": "socks",
    "guantes": "gloves",
    "perro": "dog",
    "perros": "dogs",
    "gato": "cat",
    "gatos": "cats",
    "mascota": "pet",
    "mascotas": "pets",
    "comedero": "bowl",
    "comida": "food",
    "correa": "leash",
    "collar": "collar",
    "juego": "game",
    "pelota": "ball",
    "bolsa": "bag",
    "bolsas": "bags",
    "vaso": "glass",
    "vasos": "glasses",
    "copa": "glass",
    "copas": "glasses",
    "vino": "wine",
    "cuchillo": "knife",
    "cuchillos": "knives",
    "manta": "blanket",
    "cobija": "blanket",
    "almohada": "pillow",
    "toalla": "towel",
    "jabón": "soap",
    "jabon": "soap",
    "crema": "cream",
    "maquillaje": "makeup",
    "uñas": "nails",
    "pelo": "hair",
    "cabello": "hair",
    "luces": "lights",
    "luz": "light",
    "ventilador": "fan",
    "techo": "ceiling",
    "pared": "wall",
    "escritorio": "desk",
    "ruedas": "wheels",
    "tijeras": "scissors",
    "papel": "paper",
    "cuaderno": "notebook",
    "agenda": "planner",
    "lápiz": "pencil",
    "lapiz": "pencil",
    "bolígrafo": "pen",
    "boligrafo": "pen",
    "rotura": "breakage",
    "anti": "anti",
    "rojos": "red",
    "rojas": "red",
    "azules": "blue",
    "negros": "black",
    "negras": "black",
    "blancos": "white",
    "blancas": "white",
    "verdes": "green",
    "mujeres": "women",
    "pantuflas": "slippers",
    "sandalias": "sandals",
    "amarilla": "yellow",
    "rosas": "pink",
    "grises": "gray",
    "marrón": "brown",
    "marron": "brown",
    "morado": "purple",
    "morada": "purple",
    "naranja": "orange",
    "plateado": "silver",
    "dorado": "gold",
    "dorada": "gold",
    "tacones": "heels",
    "para": "for",
    "con": "with",
    "y": "and",
    "bañador": "swimsuit",
    "cinta": "tape",
}
_ES_FILLER = re.compile(
    r"\b(quiero|quisiera|busco|buscando|necesito|me\s+gustar[ií]a|mu[eé]strame|dame|un|una|unos|unas|el|la|"
    r"los|las|de|del|por\s+favor|algo|alg[uú]n|alguna)\b",
    re.I,
)


# Words spelt the same in both languages: no evidence either way.
SHARED_WORDS = frozenset({"cable", "sofa", "anti", "collar", "agenda", "tenis", "gamer", "piel", "rosa"})


ENGLISH_COLORS = frozenset(
    "red blue black white green yellow pink gray brown tan beige purple orange silver gold navy".split()
)
_SPANISH_COLORS = {
    "rojo": "red", "azul": "blue", "negro": "black", "blanco": "white", "verde": "green", "amarillo": "yellow",
    "rosa": "pink", "rosado": "pink", "gris": "gray", "marrón": "brown", "marron": "brown", "café": "brown",
    "cafe": "brown", "morado": "purple", "naranja": "orange", "plateado": "silver", "dorado": "gold",
    "beige": "beige", "marino": "navy",
}  # fmt: skip


def _inflections(word: str) -> set[str]:
    """A Spanish colour adjective with its gender and number forms (rojo, roja, rojos, rojas; azul, azules)."""
    if word.endswith("o"):
        return {word, word[:-1] + "a", word + "s", word[:-1] + "as"}
    if word.endswith(("l", "n", "s", "z", "r")) or word.endswith(("ón",)):
        return {word, word + "es", word.replace("ón", "on") + "es"}
    return {word, word + "s"}


# Colour words of both languages -> the English colour (for colour filters and colour exclusions).
COLOR_WORDS: dict[str, str] = (
    {c: c for c in ENGLISH_COLORS}
    | {"grey": "gray", "golden": "gold"}
    | {form: en for es, en in _SPANISH_COLORS.items() for form in _inflections(es)}
)


def color_words() -> dict[str, str]:
    """Colour words in English and Spanish -> the English colour (for colour filters)."""
    return COLOR_WORDS


# Set phrases whose words mislead one by one: "juego de sábanas" is a sheet set, not a game.
_ES_PHRASES = (
    (re.compile(r"\bjuegos?\s+de\s+mesa\b", re.I), "board games"),
    (re.compile(r"\bjuegos?\s+de\s+(?:video|vídeo)s?\b", re.I), "video games"),
    (re.compile(r"\bjuegos?\s+de\b", re.I), "set"),
    (re.compile(r"\bkits?\s+de\b", re.I), "kit"),
)


def strip_fillers_es(text: str) -> str:
    """Set phrases in English, Spanish request words and articles removed ("quiero una botella de agua" ->
    "botella agua", "juego de cuchillos" -> "set cuchillos")."""
    for phrase, english in _ES_PHRASES:
        text = phrase.sub(english, text)
    return _ES_FILLER.sub(" ", text)


def translate_es(text: str) -> str:
    """Word-level Spanish->English for shop vocabulary; unknown words are kept."""
    return " ".join(ES_EN.get(w.lower(), w) for w in strip_fillers_es(text).split())
