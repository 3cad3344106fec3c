"""Score a message-understanding function on data/eval/understanding_cases.jsonl, per class.

    python research/run_cases.py [--show-failures] [--json out.json]

`check(expect, got)` is the reusable part: `got` is a plain dict with the keys intent, language,
refs, search_text, price_min, price_max, exclude_terms, exclude_colors, colors. `current(...)`
adapts today's `agent.nlu.understand` (read only, nothing is changed) so that the "before" figures of
issue 10 can be measured; a rebuilt understanding module needs only its own adapter.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CASES = ROOT / "data/eval/understanding_cases.jsonl"

# Products "on screen" for follow-up turns: five, with prices, as a search would show them.
SHOWN = [
    {"product_id": f"P{i}", "name": f"Product {i}", "brand": "Acme", "price": p, "color": c}
    for i, (p, c) in enumerate([(19.99, "Black"), (34.5, "Blue"), (12.0, "Red"), (55.0, "White"), (28.0, "Black")])
]


def fold(text: str) -> str:
    """Lower-case, accents removed (so 'inalámbricos' and 'inalambricos' compare equal)."""
    nfkd = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in nfkd if not unicodedata.combining(ch))


def _alts(entry: Any) -> list[str]:
    return [fold(a) for a in (entry if isinstance(entry, list) else [entry])]


def check(expect: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Failed expectations, each as a short message (empty list = pass)."""
    fails: list[str] = []
    text = fold(got.get("search_text") or "")
    for key in ("price_min", "price_max"):
        if key in expect:
            want, have = expect[key], got.get(key)
            if want is None and have is not None:
                fails.append(f"{key}={have} (want none)")
            elif want is not None and (have is None or abs(float(have) - float(want)) > 0.005):
                fails.append(f"{key}={have} (want {want})")
    for entry in expect.get("search_must_contain", []):
        if not any(a in text for a in _alts(entry)):
            fails.append(f"search text {got.get('search_text')!r} lacks {entry!r}")
    for entry in expect.get("search_must_not_contain", []):
        if any(a in text for a in _alts(entry)):
            fails.append(f"search text {got.get('search_text')!r} has {entry!r}")
    excl = [fold(t) for t in got.get("exclude_terms") or []]
    for entry in expect.get("exclude_terms_contain", []):
        if not any(a in t for a in _alts(entry) for t in excl):
            fails.append(f"exclusions {got.get('exclude_terms')} lack {entry!r}")
    for key in ("exclude_colors", "colors"):
        if key in expect:
            have = {fold(c) for c in got.get(key) or []}
            missing = [c for c in expect[key] if fold(c) not in have]
            if missing:
                fails.append(f"{key}={sorted(have)} lacks {missing}")
    for key in ("intent", "language"):
        if key in expect and got.get(key) != expect[key]:
            fails.append(f"{key}={got.get(key)} (want {expect[key]})")
    if "refs" in expect and list(got.get("refs") or []) != expect["refs"]:
        fails.append(f"refs={got.get('refs')} (want {expect['refs']})")
    return fails


def load_vocabulary() -> Any:
    """Brands and categories from the catalog file (what AgentDeps reads from the database)."""
    from agent.nlu import Vocabulary

    brands: Counter[str] = Counter()
    cats: set[str] = set()
    with gzip.open(ROOT / "data/esci-us/products.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            p = json.loads(line)
            if p.get("brand"):
                brands[p["brand"].strip().lower()] += 1
            for c in p.get("category") or []:
                cats.add(str(c).strip().lower())
    return Vocabulary(frozenset(b for b, n in brands.items() if n >= 2 and len(b) >= 2), frozenset(cats))


def current(vocab: Any) -> Callable[[str, list[dict[str, Any]], str | None], dict[str, Any]]:
    """Adapter for today's agent.nlu.understand."""
    from agent.nlu import understand

    def run(message: str, shown: list[dict[str, Any]], previous_language: str | None) -> dict[str, Any]:
        u = understand(message, vocab, shown, previous_language)
        f = u.filters
        return {
            "intent": u.intent, "language": u.language, "refs": u.refs, "search_text": u.search_text,
            "price_min": f.price_min, "price_max": f.price_max, "exclude_terms": list(f.exclude_terms),
            "exclude_colors": list(getattr(f, "exclude_colors", ()) or ()), "colors": list(f.colors),
        }  # fmt: skip

    return run


def score(fn: Callable[..., dict[str, Any]], cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Pass counts per class (a conversation passes when all its turns pass) and the failures."""
    passed: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    failures: list[dict[str, Any]] = []
    for c in cases:
        turns = c.get("turns") or [{"message": c["message"], "expect": c["expect"]}]
        shown: list[dict[str, Any]] = []
        prev: str | None = None
        fails: list[str] = []
        for t in turns:
            got = fn(t["message"], shown, prev)
            fails += [f"[{t['message']}] {m}" for m in check(t["expect"], got)]
            prev = got.get("language")
            if got.get("intent") in ("search", "refine"):
                shown = SHOWN
        total[c["class"]] += 1
        if fails:
            failures.append({"id": c["id"], "fails": fails})
        else:
            passed[c["class"]] += 1
    return {"per_class": {k: [passed[k], total[k]] for k in total}, "failures": failures}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show-failures", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    cases = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]
    result = score(current(load_vocabulary()), cases)
    for cls, (p, n) in result["per_class"].items():
        print(f"{cls:22s} {p:3d}/{n:<3d}")  # noqa: T201
    if args.show_failures:
        for f in result["failures"]:
            print(f["id"], "|", " ; ".join(f["fails"]))  # noqa: T201
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
