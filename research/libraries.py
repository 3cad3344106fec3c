"""Measure the candidate understanding libraries of issue 10 on this machine.

    .venv/bin/python research/libraries.py [--json research/results/libraries.json]

price-parser, text2num (alpha2digit en/es), quantulum3, lingua-language-detector, rapidfuzz and
symspellpy: installed version, import time (fresh interpreter, median of 3), per-call time, and how
each does on the cases of data/eval/understanding_cases.jsonl (and, for language detection and
spelling, on the real queries). Compared with the project's current regex code where there is one.
Nothing here changes the project; read-only use of shopagent.query / agent.nlu.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EVAL = ROOT / "data/eval"
PY = sys.executable

LIBS = {
    "price-parser": "price_parser",
    "text2num": "text_to_num",
    "quantulum3": "quantulum3.parser",
    "lingua-language-detector": "lingua",
    "rapidfuzz": "rapidfuzz",
    "symspellpy": "symspellpy",
}

# Misspelled shopper queries (typed for this measurement) -> what was meant. Targets use catalog words.
MISSPELLED = [
    ("wireles headphnes", "wireless headphones"),
    ("bluetoth speker", "bluetooth speaker"),
    ("runing shoes", "running shoes"),
    ("lether belt", "leather belt"),
    ("todler water botle", "toddler water bottle"),
    ("weigted blanket", "weighted blanket"),
    ("makeup brushs", "makeup brushes"),
    ("sunglases for women", "sunglasses for women"),
    ("ceiling fan wihtout light", "ceiling fan without light"),
    ("dinerware set", "dinnerware set"),
    ("marshmalows", "marshmallows"),
    ("wirless thermostat", "wireless thermostat"),
    ("multivitamn", "multivitamin"),
    ("screwdiver set", "screwdriver set"),
    ("hummingbird feder", "hummingbird feeder"),
    ("kitchen towles", "kitchen towels"),
    ("guitr strings", "guitar strings"),
    ("snorkle mask", "snorkel mask"),
    ("leggins high waisted", "leggings high waisted"),
    ("slipers for men", "slippers for men"),
    ("stainles steel pan", "stainless steel pan"),
    ("baby shower gifs", "baby shower gifts"),
    ("keybord", "keyboard"),
    ("nail polsh", "nail polish"),
    ("picnic baskit", "picnic basket"),
    ("shampo", "shampoo"),
    ("sandels for women", "sandals for women"),
    ("dumbels", "dumbbells"),
    ("calander planner", "calendar planner"),
    ("vaccum", "vacuum"),
]


def tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def cases() -> list[dict[str, Any]]:
    lines = (EVAL / "understanding_cases.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def single(cs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cs if "message" in c]


def timed(fn: Callable[[str], Any], texts: list[str], repeat: int = 3) -> dict[str, float]:
    """Per-call wall time in microseconds over `texts` (after one warm-up pass)."""
    for t in texts:
        fn(t)
    samples = []
    for _ in range(repeat):
        for t in texts:
            s = time.perf_counter()
            fn(t)
            samples.append((time.perf_counter() - s) * 1e6)
    samples.sort()
    return {"p50_us": round(statistics.median(samples), 1), "p95_us": round(samples[int(0.95 * (len(samples) - 1))], 1)}


def import_time(module: str, runs: int = 3) -> float:
    """Median seconds to import `module` in a fresh interpreter."""
    code = f"import time;t=time.perf_counter();import {module};print(time.perf_counter()-t)"
    out = []
    for _ in range(runs):
        res = subprocess.run([PY, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
        out.append(float(res.stdout.strip().splitlines()[-1]))
    return round(statistics.median(out), 3)


# ---------------------------------------------------------------- price-parser


def price_parser_report(cs: list[dict[str, Any]]) -> dict[str, Any]:
    from price_parser import Price

    probes = [
        "2 mil pesos",
        "dos mil pesos",
        "1.299,00 €",
        "25,50",
        "$1,299.99",
        "1.5k",
        "$1.2k",
        "25 bucks",
        "45 usd",
        "USD 45",
        "150 mxn",
        "20 dólares",
        "40 euros",
        "500 pesos",
        "128GB",
        "3-5 years",
        "$20-$40",
    ]
    probe_out = {p: [Price.fromstring(p).amount_float, Price.fromstring(p).currency] for p in probes}
    # Whole messages: is the amount the expected one, and does it come with currency evidence?
    priced = [
        c
        for c in single(cs)
        if c["class"] in ("control_price", "number_words", "currency_words")
        and (c["expect"].get("price_min") is not None or c["expect"].get("price_max") is not None)
    ]
    unpriced = [c for c in single(cs) if c["class"] in ("quantity_not_price", "range_not_price")]
    amount_ok = currency_seen = 0
    for c in priced:
        p = Price.fromstring(c["message"])
        want = {v for v in (c["expect"].get("price_min"), c["expect"].get("price_max")) if v is not None}
        amount_ok += p.amount_float is not None and any(abs(p.amount_float - w) < 0.005 for w in want)
        currency_seen += p.currency is not None
    fp_amount = sum(Price.fromstring(c["message"]).amount_float is not None for c in unpriced)
    fp_currency = sum(Price.fromstring(c["message"]).currency is not None for c in unpriced)
    return {
        "probes": probe_out,
        "priced_messages": len(priced),
        "amount_equals_an_expected_bound": amount_ok,
        "currency_detected": currency_seen,
        "non_price_messages": len(unpriced),
        "non_price_with_an_amount": fp_amount,
        "non_price_with_a_currency": fp_currency,
        "speed": timed(lambda t: Price.fromstring(t), [c["message"] for c in single(cs)]),
    }


# ---------------------------------------------------------------- text2num


def text2num_report(cs: list[dict[str, Any]]) -> dict[str, Any]:
    from text_to_num import alpha2digit

    probes = [
        ("dos mil pesos", "es"),
        ("quinientos pesos", "es"),
        ("mil quinientos", "es"),
        ("3 mil pesos", "es"),
        ("entre dos mil y tres mil pesos", "es"),
        ("two hundred dollars", "en"),
        ("twelve hundred", "en"),
        ("less than a hundred bucks", "en"),
        ("forty and sixty", "en"),
        ("el primero y el tercero", "es"),
        ("the second one", "en"),
        ("juego de dos sartenes", "es"),
        ("set of four wine glasses", "en"),
        ("one piece bikini", "en"),
    ]
    probe_out = {f"{t} [{lang}]": alpha2digit(t, lang) for t, lang in probes}
    # Number-word prices: after alpha2digit, does every expected bound appear as digits?
    wordy = [
        c
        for c in single(cs)
        if c["class"] in ("number_words", "control_price", "currency_words")
        and re.search(r"[a-záéíóú]", c["message"])
        and (c["expect"].get("price_min") or c["expect"].get("price_max"))
    ]
    ok = []
    for c in wordy:
        out = alpha2digit(c["message"], c["language"])
        want = [v for v in (c["expect"].get("price_min"), c["expect"].get("price_max")) if v is not None]
        digits = {float(x.replace(",", "")) for x in re.findall(r"\d[\d,]*(?:\.\d+)?", out)}
        ok.append((c["id"], all(w in digits for w in want), out))
    # Harm: ordinals and reference words rewritten in follow-up turns and queries.
    turns = [t["message"] for c in cs if "turns" in c for t in c["turns"]]
    changed_turns = [(t, alpha2digit(t, "es" if re.search(r"[áéíóúñ¿]|\b(el|la|de)\b", t) else "en")) for t in turns]
    changed_turns = [(a, b) for a, b in changed_turns if a != b]
    return {
        "probes": probe_out,
        "messages_with_letters_and_a_price": len(wordy),
        "all_bounds_as_digits_after_alpha2digit": sum(ok for _, ok, _ in ok),
        "misses": [(i, out) for i, good, out in ok if not good],
        "follow_up_turns_rewritten": changed_turns,
        "speed_en": timed(lambda t: alpha2digit(t, "en"), [c["message"] for c in single(cs) if c["language"] == "en"]),
        "speed_es": timed(lambda t: alpha2digit(t, "es"), [c["message"] for c in single(cs) if c["language"] == "es"]),
    }


# ---------------------------------------------------------------- quantulum3


def quantulum_report(cs: list[dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    from quantulum3 import classifier, parser

    imported = time.perf_counter() - started
    out: dict[str, Any] = {
        "languages": sorted(
            p.name
            for p in (Path(parser.__file__).parent / "_lang").iterdir()
            if p.is_dir() and not p.name.startswith("_")
        )
    }
    # The shipped disambiguation classifier is a scikit-learn pickle; see whether it loads here.
    try:
        started = time.perf_counter()
        parser.parse("power bank 20000mah with 2 usb ports for 25 bucks")
        out["first_parse_s_with_classifier"] = round(time.perf_counter() - started, 2)
        out["classifier_loads"] = True
    except Exception as exc:  # noqa: BLE001 - recorded, then measured without the classifier
        out["classifier_loads"] = False
        out["classifier_error"] = f"{type(exc).__name__}: {exc}"
    classifier.USE_CLF = False  # dictionary disambiguation (no scikit-learn)
    started = time.perf_counter()
    parser.parse("warm up 10 kg")
    out["first_parse_s_without_classifier"] = round(time.perf_counter() - started, 2)
    out["import_s_in_process"] = round(imported, 2)

    def units(text: str) -> list[tuple[float, str, str]]:
        try:
            return [(q.value, q.unit.name, q.unit.entity.name) for q in parser.parse(text)]
        except Exception as exc:  # noqa: BLE001
            return [(float("nan"), f"error {type(exc).__name__}", "error")]

    probes = [
        "USB flash drive over 128GB",
        "toys for ages 3-5 years",
        "pantalla de 55 pulgadas",
        "sofá de 2 plazas",
        "phone charger 20W",
        "25 bucks",
        "under $50",
        "2 mil pesos",
        "500 pesos",
        "1.5k",
        "40 euros",
        "20 dólares",
    ]
    out["probes"] = {p: units(p) for p in probes}
    per: dict[str, Counter[str]] = {}
    for c in single(cs):
        if c["class"] not in ("quantity_not_price", "range_not_price", "control_price"):
            continue
        found = units(c["message"])
        physical = any(e not in ("dimensionless", "currency", "error") for _, _, e in found)
        currency = any(e == "currency" for _, _, e in found)
        key = f"{c['class']}/{c['language']}"
        per.setdefault(key, Counter())
        per[key]["cases"] += 1
        per[key]["physical_unit_found"] += physical
        per[key]["currency_found"] += currency
    out["on_cases"] = {k: dict(v) for k, v in sorted(per.items())}
    out["speed"] = timed(lambda t: parser.parse(t), [c["message"] for c in single(cs)], repeat=1)
    return out


# ---------------------------------------------------------------- language detection


def language_sets() -> dict[str, list[str]]:
    shared = tsv(ROOT / "data/esci-us/queries.tsv")
    extra = tsv(EVAL / "extra_queries.tsv")
    es_q = tsv(EVAL / "queries_es.tsv")
    same = {r["query"] for r in shared}
    cs = cases()
    turns = [(c["language"], t["message"]) for c in cs if "turns" in c for t in c["turns"]]
    return {
        # "tennis lacoste hombre" is a real English-site query with a Spanish word: left out of both sets.
        "en_real_queries": [r["query"] for r in shared + extra if r["query"] != "tennis lacoste hombre"],
        "es_queries": [r["query"] for r in es_q if r["query"] not in same],  # not the brand-only ones left unchanged
        "en_case_messages": [c["message"] for c in single(cs) if c["language"] == "en"]
        + [m for lang, m in turns if lang == "en"],
        "es_case_messages": [c["message"] for c in single(cs) if c["language"] == "es"]
        + [m for lang, m in turns if lang == "es"],
    }


def lingua_report() -> dict[str, Any]:
    from lingua import Language, LanguageDetectorBuilder

    from agent.nlu import message_language
    from shopagent.query import detect_language

    started = time.perf_counter()
    high = (
        LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.SPANISH)
        .with_preloaded_language_models()
        .build()
    )
    build_s = time.perf_counter() - started
    low = LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.SPANISH).with_low_accuracy_mode().build()

    def via(det: Any) -> Callable[[str], str]:
        def f(t: str) -> str:
            lang = det.detect_language_of(t)
            return "es" if lang == Language.SPANISH else "en"  # undecided -> English (the catalog's language)

        return f

    vocab = catalog_vocabulary()

    def guarded(t: str) -> str:
        """lingua, except that a message made only of the catalog's (English) words is English."""
        words = re.findall(r"[a-záéíóúñü]+", t.lower())
        if words and all(w in vocab for w in words):
            return "en"
        return via(high)(t)

    detectors: dict[str, Callable[[str], str]] = {
        "current detect_language": detect_language,
        "current message_language": lambda t: message_language(t, None),
        "lingua (high accuracy)": via(high),
        "lingua (low accuracy)": via(low),
        "lingua (high) + catalog-vocabulary guard": guarded,
    }
    sets = language_sets()
    result: dict[str, Any] = {
        "build_s_preloaded_en_es": round(build_s, 2),
        "sets": {k: len(v) for k, v in sets.items()},
    }
    for name, fn in detectors.items():
        row: dict[str, Any] = {}
        for key, texts in sets.items():
            want = "en" if key.startswith("en") else "es"
            wrong = [t for t in texts if fn(t) != want]
            row[key] = {"correct": len(texts) - len(wrong), "of": len(texts), "wrong": wrong[:12]}
        row["speed"] = timed(fn, sets["es_case_messages"] + sets["en_case_messages"])
        result[name] = row
    return result


# ---------------------------------------------------------------- spelling


def catalog_vocabulary() -> Counter[str]:
    """Word frequencies of names, brands and categories (the catalog's own vocabulary)."""
    words: Counter[str] = Counter()
    with gzip.open(ROOT / "data/esci-us/products.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            p = json.loads(line)
            text = " ".join([p.get("name") or "", p.get("brand") or "", " ".join(p.get("category") or [])])
            words.update(w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 2)
    return words


def spelling_report() -> dict[str, Any]:
    from rapidfuzz import fuzz, process
    from symspellpy import SymSpell, Verbosity

    vocab = catalog_vocabulary()
    ranked = [w for w, _ in vocab.most_common()]
    started = time.perf_counter()
    sym = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
    for w, n in vocab.items():
        sym.create_dictionary_entry(w, n)
    sym_build = time.perf_counter() - started

    def fix_with(correct_word: Callable[[str], str]) -> Callable[[str], str]:
        def fix(text: str) -> str:
            out = []
            for tok in text.split():
                low = tok.lower()
                out.append(correct_word(low) if low.isalpha() and len(low) >= 4 and low not in vocab else tok)
            return " ".join(out)

        return fix

    def rf_word(w: str) -> str:
        m = process.extractOne(w, ranked, scorer=fuzz.ratio, score_cutoff=80)
        return m[0] if m else w

    def sym_word(w: str) -> str:
        s = sym.lookup(w, Verbosity.TOP, max_edit_distance=2, include_unknown=True)
        return s[0].term if s else w

    def sym_compound(text: str) -> str:
        s = sym.lookup_compound(text.lower(), max_edit_distance=2)
        return s[0].term if s else text

    methods = {
        "rapidfuzz ratio>=80 (OOV words)": fix_with(rf_word),
        "symspell lookup (OOV words)": fix_with(sym_word),
        "symspell lookup_compound (whole text)": sym_compound,
    }
    missing_targets = sorted({w for _, t in MISSPELLED for w in t.split() if w not in vocab})
    sets = language_sets()
    result: dict[str, Any] = {
        "vocabulary_words": len(vocab),
        "symspell_build_s": round(sym_build, 2),
        "targets_not_in_catalog_vocabulary": missing_targets,
    }
    for name, fix in methods.items():
        fixed = [(m, fix(m), t) for m, t in MISSPELLED]
        right = [f for f in fixed if f[1] == f[2]]
        changed_en = [(q, fix(q)) for q in sets["en_real_queries"] if fix(q) != q.lower() and fix(q) != q]
        changed_es = [(q, fix(q)) for q in sets["es_queries"] if fix(q) != q.lower() and fix(q) != q]
        result[name] = {
            "misspelled_fixed": len(right),
            "misspelled_total": len(MISSPELLED),
            "misses": [(m, f) for m, f, t in fixed if f != t][:12],
            "real_en_queries_changed": len(changed_en),
            "real_en_total": len(sets["en_real_queries"]),
            "en_changes": changed_en[:15],
            "es_queries_changed": len(changed_es),
            "es_total": len(sets["es_queries"]),
            "es_changes": changed_es[:10],
            "speed": timed(fix, [m for m, _ in MISSPELLED] + sets["en_real_queries"][:50]),
        }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=ROOT / ".data/research/libraries.json")
    args = ap.parse_args()
    cs = cases()
    report: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "loadavg_at_start": os.getloadavg()},
        "versions": {k: metadata.version(k) for k in LIBS},
        "import_s": {k: import_time(m) for k, m in LIBS.items()},
    }
    pip_check = subprocess.run([PY, "-m", "pip", "check"], capture_output=True, text=True)
    report["pip_check"] = pip_check.stdout.strip() or pip_check.stderr.strip()
    for name, fn in [
        ("price-parser", lambda: price_parser_report(cs)),
        ("text2num", lambda: text2num_report(cs)),
        ("quantulum3", lambda: quantulum_report(cs)),
        ("lingua", lingua_report),
        ("spelling", spelling_report),
    ]:
        started = time.perf_counter()
        report[name] = fn()
        print(f"{name}: {time.perf_counter() - started:.1f}s", file=sys.stderr)  # noqa: T201
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    print(json.dumps(report, indent=1, ensure_ascii=False, default=str))  # noqa: T201


if __name__ == "__main__":
    main()
