"""Scoring message understanding on labelled cases (`data/eval/understanding_cases.jsonl`), per class.

A case is `{"id", "class", "language", "message", "expect"}` or a conversation `{"id", "class", "language",
"turns": [{"message", "expect"}, ...]}` whose first turn is a search (its results are "on screen" for the
next turns). `expect` keys: `price_min`/`price_max` (a number, or null = must be absent),
`search_must_contain`/`search_must_not_contain` (words, accent- and case-insensitive substrings of the
search text; a list entry is satisfied by any of its alternatives), `exclude_terms_contain`, `colors`,
`exclude_colors`, `intent`, `language`, `refs` (0-based positions on screen).

Cases are split for development: `split(case_id)` puts about a third in "heldout" by a stable hash of the
id, so rules are written against "dev" and checked once on "heldout".
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from shopagent.domain import ProductView
from shopagent.understanding import Understanding

Split = Literal["dev", "heldout"]
Understand = Callable[[str, list[ProductView], str | None], Understanding]

# Products "on screen" for follow-up turns: five, with prices and colours, as a search would show them.
SHOWN: list[ProductView] = [
    ProductView(product_id=f"P{i}", name=f"Product {i}", brand="Acme", price=price, image_url=None, score=0.5,
                similarity=0.5, backend="hybrid", color=color)
    for i, (price, color) in enumerate([(19.99, "Black"), (34.5, "Blue"), (12.0, "Red"), (55.0, "White"),
                                        (28.0, "Black")])
]  # fmt: skip


def load_cases(path: Path) -> list[dict[str, Any]]:
    """The cases of a JSONL file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def split(case_id: str) -> Split:
    """A case's development split (stable: a hash of its id)."""
    return "heldout" if int(hashlib.sha256(case_id.encode()).hexdigest(), 16) % 3 == 0 else "dev"


def fold(text: str) -> str:
    """Lower-case without accents ('inalámbricos' == 'inalambricos')."""
    nfkd = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in nfkd if not unicodedata.combining(ch))


def _alternatives(entry: str | list[str]) -> list[str]:
    """An expectation entry's accepted spellings."""
    return [fold(a) for a in (entry if isinstance(entry, list) else [entry])]


def check(expect: dict[str, Any], u: Understanding) -> list[str]:
    """The failed expectations of one turn, each a short message (empty: the turn passes)."""
    fails: list[str] = []
    f = u.request.filters
    text = fold(u.request.text)
    for key, have in (("price_min", f.price_min), ("price_max", f.price_max)):
        if key in expect:
            want = expect[key]
            if want is None and have is not None:
                fails.append(f"{key}={have} (want none)")
            elif want is not None and (have is None or abs(float(have) - float(want)) > 0.005):
                fails.append(f"{key}={have} (want {want})")
    for entry in expect.get("search_must_contain", []):
        if not any(a in text for a in _alternatives(entry)):
            fails.append(f"search text {u.request.text!r} lacks {entry!r}")
    for entry in expect.get("search_must_not_contain", []):
        if any(a in text for a in _alternatives(entry)):
            fails.append(f"search text {u.request.text!r} has {entry!r}")
    excluded = [fold(t) for t in f.exclude_terms]
    for entry in expect.get("exclude_terms_contain", []):
        if not any(a in t for a in _alternatives(entry) for t in excluded):
            fails.append(f"exclusions {list(f.exclude_terms)} lack {entry!r}")
    for key, values in (("colors", f.colors), ("exclude_colors", f.exclude_colors)):
        if key in expect:
            have_set = {fold(c) for c in values}
            if missing := [c for c in expect[key] if fold(c) not in have_set]:
                fails.append(f"{key}={sorted(have_set)} lacks {missing}")
    for key, value in (("intent", u.intent), ("language", u.language)):
        if key in expect and value != expect[key]:
            fails.append(f"{key}={value} (want {expect[key]})")
    if "refs" in expect and list(u.refs) != expect["refs"]:
        fails.append(f"refs={u.refs} (want {expect['refs']})")
    return fails


def score(fn: Understand, cases: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Pass counts per class (a conversation passes when all its turns do) and the failures."""
    passed: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    failures: list[dict[str, Any]] = []
    for case in cases:
        turns = case.get("turns") or [{"message": case["message"], "expect": case["expect"]}]
        shown: list[ProductView] = []
        previous: str | None = None
        fails: list[str] = []
        for turn in turns:
            u = fn(turn["message"], shown, previous)
            fails += [f"[{turn['message']}] {m}" for m in check(turn["expect"], u)]
            previous = u.language
            if u.intent in ("search", "refine"):
                shown = SHOWN
        total[case["class"]] += 1
        if fails:
            failures.append({"id": case["id"], "class": case["class"], "fails": fails})
        else:
            passed[case["class"]] += 1
    return {"per_class": {k: [passed[k], total[k]] for k in sorted(total)}, "failures": failures}
