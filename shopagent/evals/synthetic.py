"""A synthetic catalog of any size made from the sample, for scale benchmarks.

Product i recombines a base product A with a donor B from the same top-level category: the head of A's name with
the tail of B's, A's first bullets with B's later ones, the description of one of them, A's brand, colour,
category and rating, A's price moved by up to ±15% (unknown stays unknown), 85% in stock. Full text therefore sees
the sample's vocabulary with term frequencies that grow with the catalog, as a real catalog's do. Its vector is
either `normalise(0.75 v_A + 0.25 v_B + noise)` from the sample's real vectors (a continuum around real
products, no exact duplicates) or the real embedding of its text (`embed`, slow). Deterministic for a seed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Weight of the base and donor vectors, and the noise's norm relative to a unit vector.
BASE_WEIGHT, DONOR_WEIGHT, NOISE_NORM = 0.75, 0.25, 0.25
IN_STOCK_SHARE = 0.85
_WORD = re.compile(r"^[a-z][a-z'-]{2,}$")


@dataclass(frozen=True)
class Plan:
    """Which sample products each synthetic product i is made of, and its filterable fields as arrays (for exact
    filtered search beside the database): base/donor indexes, price (NaN = unknown), in-stock flag, brand."""

    base: np.ndarray
    donor: np.ndarray
    price: np.ndarray
    in_stock: np.ndarray
    brand: np.ndarray

    def __len__(self) -> int:
        """Number of synthetic products."""
        return len(self.base)


def product_id(i: int) -> str:
    """The id of synthetic product i."""
    return f"SYN{i:08d}"


def make_plan(sample: Sequence[dict[str, Any]], n: int, seed: int = 0) -> Plan:
    """Draw the base and donor of n products (donors from the base's top-level category) and their fields."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, len(sample), n)
    groups: dict[str, list[int]] = defaultdict(list)
    for idx, p in enumerate(sample):
        groups[(p.get("category") or [""])[0]].append(idx)
    members = {key: np.asarray(ids) for key, ids in groups.items()}
    top = np.asarray([(p.get("category") or [""])[0] for p in sample], dtype=object)
    donor = np.empty(n, dtype=np.int64)
    picks = rng.random(n)
    for key, ids in members.items():
        where = np.nonzero(top[base] == key)[0]
        donor[where] = ids[(picks[where] * len(ids)).astype(np.int64)]
    sample_price = np.asarray([np.nan if p.get("price") is None else float(p["price"]) for p in sample])
    price = np.round(sample_price[base] * rng.uniform(0.85, 1.15, n), 2)
    in_stock = rng.random(n) < IN_STOCK_SHARE
    brand = np.asarray([(p.get("brand") or "").strip().lower() for p in sample], dtype=object)[base]
    return Plan(base, donor, price, in_stock, brand)


def plan_vectors(plan: Plan, sample_vectors: np.ndarray, start: int, stop: int, seed: int = 0) -> np.ndarray:
    """Unit vectors of products start..stop-1 from the sample's vectors (float32, shape (stop-start, dim))."""
    rng = np.random.default_rng([seed, start])
    mixed = BASE_WEIGHT * sample_vectors[plan.base[start:stop]] + DONOR_WEIGHT * sample_vectors[plan.donor[start:stop]]
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    noise = rng.standard_normal(mixed.shape)
    noise *= NOISE_NORM / np.linalg.norm(noise, axis=1, keepdims=True)
    out = mixed + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out, dtype=np.float32)


def _splice(head: str, tail: str, rng: np.random.Generator) -> str:
    """The first 50-80% of `head`'s words, then the last third of `tail`'s."""
    a, b = head.split(), tail.split()
    keep = max(1, int(len(a) * rng.uniform(0.5, 0.8)))
    return " ".join(a[:keep] + b[len(b) - len(b) // 3 :])


def record(plan: Plan, sample: Sequence[dict[str, Any]], i: int, seed: int = 0) -> dict[str, Any]:
    """Synthetic product i as a raw catalog record (the sample's field names)."""
    rng = np.random.default_rng([seed, i, 1])
    a, b = sample[int(plan.base[i])], sample[int(plan.donor[i])]
    bullets_a, bullets_b = list(a.get("bullet_points") or []), list(b.get("bullet_points") or [])
    price = float(plan.price[i])
    return {
        "product_id": product_id(i),
        "name": _splice(a.get("name") or "", b.get("name") or "", rng),
        "description": (a if rng.random() < 0.5 else b).get("description") or "",
        "bullet_points": bullets_a[: max(1, len(bullets_a) // 2)] + bullets_b[len(bullets_b) // 2 :],
        "brand": a.get("brand"),
        "color": a.get("color"),
        "category": a.get("category"),
        "price": None if np.isnan(price) else price,
        "rating": a.get("rating"),
        "rating_count": a.get("rating_count"),
        "in_stock": bool(plan.in_stock[i]),
        "is_book": a.get("is_book"),
        "image": a.get("image"),
    }


def records(
    plan: Plan,
    sample: Sequence[dict[str, Any]],
    vectors: Callable[[int, int, list[dict[str, Any]]], np.ndarray],
    batch: int = 5000,
    seed: int = 0,
) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
    """(record, vector) for every product in order; `vectors(start, stop, records)` gives each batch's vectors."""
    for start in range(0, len(plan), batch):
        stop = min(start + batch, len(plan))
        batch_records = [record(plan, sample, i, seed) for i in range(start, stop)]
        yield from zip(batch_records, vectors(start, stop, batch_records), strict=True)


def own_queries(sample: Sequence[dict[str, Any]], n: int, seed: int = 0) -> list[str]:
    """n shopper-like queries: 2-3 consecutive lower-case words of random sample product names."""
    rng = np.random.default_rng([seed, 7])
    out: list[str] = []
    while len(out) < n:
        name = sample[int(rng.integers(len(sample)))].get("name") or ""
        words = [w for w in name.lower().split() if _WORD.match(w)]
        if len(words) < 2:
            continue
        size = min(len(words), int(rng.integers(2, 4)))
        start = int(rng.integers(0, len(words) - size + 1))
        out.append(" ".join(words[start : start + size]))
    return out
