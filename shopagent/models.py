"""Shared value types: search filters, one hit shape for every backend, a search response."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

Backend = Literal["pgvector", "fulltext", "chroma", "hybrid"]


@dataclass(frozen=True)
class SearchFilters:
    """Structured filters; every backend applies all of them (values are always bound parameters)."""

    price_min: float | None = None
    price_max: float | None = None
    brands: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    in_stock: bool | None = None
    exclude_terms: tuple[str, ...] = ()
    exclude_ids: tuple[str, ...] = ()

    def merged(self, other: SearchFilters) -> SearchFilters:
        """`other`'s set fields win; exclusions accumulate."""
        return replace(
            self,
            price_min=other.price_min if other.price_min is not None else self.price_min,
            price_max=other.price_max if other.price_max is not None else self.price_max,
            brands=other.brands or self.brands,
            categories=other.categories or self.categories,
            colors=other.colors or self.colors,
            in_stock=other.in_stock if other.in_stock is not None else self.in_stock,
            exclude_terms=tuple(dict.fromkeys(self.exclude_terms + other.exclude_terms)),
            exclude_ids=tuple(dict.fromkeys(self.exclude_ids + other.exclude_ids)),
        )

    def as_dict(self) -> dict[str, Any]:
        """Only the set fields (for traces, logs and JSON)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items() if v not in (None, ())}


NO_FILTERS = SearchFilters()  # frozen, so safe as a shared default


@dataclass(frozen=True)
class Hit:
    """One retrieved product. `score` is cosine similarity in [-1, 1] for vector backends and
    the fused/ts_rank score for `fulltext` and `hybrid` (documented per backend)."""

    product_id: str
    score: float
    backend: Backend
    rank: int
    name: str = ""
    price: Decimal | float | None = None
    brand: str | None = None
    similarity: float | None = None  # cosine similarity when known, whatever the backend


@dataclass
class SearchResponse:
    """What a strategy returns: hits plus where they came from and why."""

    hits: list[Hit]
    strategy: str
    backend: str
    fallback_reason: str | None = None
    weak_matches: bool = False  # hits are below the threshold but above the relaxed floor
    timings_ms: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
