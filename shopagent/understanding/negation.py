"""Negated phrases -> exclusions, removed from the search text.

"without straw", "sin cordones", "no headboard", "that aren't black", "que no sea de piel", "any color but
pink", "cualquier color menos negro", "no negra ni café". A negated colour becomes a colour exclusion (the
colour field and the name), never a search word; any other negated word an exclusion term. The negated span
is at most two content words and stops at conjunctions and fillers ("and", "but", "please", "y", "pero",
"por favor", "con", ...), so "without ottoman but with cup holders" still searches for cup holders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shopagent.understanding.glossary import COLOR_WORDS

_CUE = re.compile(
    r"(?:\b(?:without|w/o|excluding|except|excepto|salvo|sin|not|non|no|free\s+of|minus|nothing|"
    r"(?:(?:that|which)\s+)?(?:is|are|was|were|does|do|did)\s*n[o']t|(?:that|which|it)'s\s+not|"
    r"que\s+no\s+(?:sea|sean|tenga|tengan|lleve|lleven|incluya|incluyan|traiga|traigan)|"
    r"(?:any|anything|everything|all|cualquier|todo|todos)(?:\s+(?:colou?r|tipo))?\s+(?:but|except|menos|excepto))"
    r"|(?<=\w)n't)\b\s*",
    re.I,
)
# Where a negated span ends: conjunctions, prepositions that start a new wish, politeness, price words.
_BOUNDARY = frozenset(
    "and with for in on at to but please that which so y con para en pero por favor que para under below over "
    "menos mas más than ni or o".split()
)
# Words inside a span that carry nothing ("not in black", "sin color negro", "no red ones").
_FILLER = frozenset(
    "the a an any of ones one color colour colored coloured have has contain contains include includes come comes "
    "de del el la los las un una en".split()
)
# Right after the cue, "in"/"en" introduce the negated colour or material ("not in black", "no en rojo").
_LEADING_FILLER = frozenset({"in", "en"})
# After "no", these make a price or a fixed phrase, not a negation ("no more than $50").
_NOT_AFTER_NO = frozenset("more less matter longer tax problem worries need".split())
# "libre de azúcar" is "sugar free": kept as positive text, since products say so in their names.
_LIBRE_DE = re.compile(r"\blibres?\s+de\s+([\w'-]+)", re.I)
_WORD = re.compile(r"[\w'./-]+")


@dataclass
class Negations:
    """Negated terms and colours, and the message without them."""

    terms: list[str] = field(default_factory=list)
    colors: list[str] = field(default_factory=list)
    text: str = ""


def _span(text: str, start: int) -> tuple[list[str], list[str], int]:
    """The negated content words after a cue at `start` (at most two; "ni"/"or" chain further colours), the
    colours among them, and where the span ends."""
    words: list[str] = []
    colors: list[str] = []
    end = start
    for i, m in enumerate(_WORD.finditer(text, start)):
        word = m.group(0).lower().strip(".,;")
        if i == 0 and word in _LEADING_FILLER:
            end = m.end()
            continue
        if word in ("ni", "or", "o", "nor") and colors and not words:
            end = m.end()  # "negra ni café", "pink or purple": the next colour is negated too
            continue
        if word in _BOUNDARY or (words and len(words) == 2):
            break
        if word in _FILLER:
            end = m.end()
            continue
        if word in COLOR_WORDS and not words:
            colors.append(COLOR_WORDS[word])
        elif not colors:
            words.append(m.group(0).strip(".,;"))
        else:
            break
        end = m.end()
        if text[m.end() : m.end() + 1] in ",;":
            break
    return words, colors, end


def extract_negations(text: str) -> Negations:
    """Negated terms and colours of a message, and the message without them."""
    out = Negations()
    pieces: list[str] = []
    last = 0
    for cue in _CUE.finditer(text):
        if cue.start() < last:
            continue
        words, colors, end = _span(text, cue.end())
        first = words[0].lower() if words else ""
        if cue.group(0).strip().lower() == "no" and first in _NOT_AFTER_NO:
            continue
        if not words and not colors:
            continue
        # Two words are negated only at the end of the message ("without glass beads"); with more words after
        # them the second starts what is wanted ("without prejudice shirt" -> "shirt").
        keep = ""
        if len(words) == 2 and re.search(r"\w", text[end:]):
            words, keep = words[:1], words[1]
        out.terms += [" ".join(words)] if words else []
        out.colors += colors
        pieces += [text[last : cue.start()], f" {keep} "]
        last = end
    rest = "".join(pieces) + text[last:]
    # "listen without prejudice shirt": a two-word negation that would leave a single word to search for keeps
    # its last word as the wanted product type.
    if len(out.terms) == 1 and len(out.terms[0].split()) == 2 and len(rest.split()) == 1:
        negated, wanted = out.terms[0].split()
        out.terms[0], rest = negated, f"{rest} {wanted}"
    out.text = _LIBRE_DE.sub(lambda m: f"{m.group(1)} free", rest)
    out.colors = list(dict.fromkeys(out.colors))
    return out
