"""Value types every layer shares: filters, a search request, the one product shape, search results and
typed fallback reasons. No I/O here.

A product has one shape from the SQL row to the JSON response: `ProductView` (a TypedDict, so the checkpointer,
the tools, the LLM and FastAPI all serialise it as it is). Filters stay a `SearchFilters` until they are
serialised at an edge (graph state, tool result, trace, HTTP) with `as_dict` / `from_dict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, NotRequired, cast

from typing_extensions import TypedDict  # pydantic needs typing_extensions' TypedDict on 3.11

from shopagent.settings import Backend, Language, Strategy


@dataclass(frozen=True)
class SearchFilters:
    """Structured filters; every backend applies all of them (values are always bound parameters).

    Prices are in the catalog's currency; `colors`/`categories` match as case-insensitive substrings;
    `exclude_terms` drop products whose *name* mentions a term (unless the name negates it too);
    `exclude_colors` drop products whose colour field or name mentions the colour.
    """

    price_min: float | None = None
    price_max: float | None = None
    brands: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    in_stock: bool | None = None
    exclude_terms: tuple[str, ...] = ()
    exclude_colors: tuple[str, ...] = ()
    exclude_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Sequences become tuples (a checkpointer's round trip or a JSON body hands back lists)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))

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
            exclude_colors=tuple(dict.fromkeys(self.exclude_colors + other.exclude_colors)),
            exclude_ids=tuple(dict.fromkeys(self.exclude_ids + other.exclude_ids)),
        )

    def as_dict(self) -> dict[str, Any]:
        """Only the set fields, tuples as lists (for state, traces, tool results and JSON)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items() if v not in (None, ())}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SearchFilters:
        """The inverse of `as_dict`; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in (data or {}).items() if k in names}
        return cls(**values)

    @property
    def is_empty(self) -> bool:
        """No filter set."""
        return not self.as_dict()


NO_FILTERS = SearchFilters()  # frozen, so safe as a shared default


@dataclass(frozen=True)
class SearchRequest:
    """What to search for: the words to embed and full-text search, and the filters understood from the
    message (price phrases, negations, stock, brand...). Built once per message by `shopagent.understanding`."""

    text: str
    filters: SearchFilters = NO_FILTERS
    language: Language = "en"
    original: str = ""
    native: str = ""  # the search words in the shopper's own language, untranslated (for the multilingual list)


@dataclass(frozen=True)
class SearchOptions:
    """Per-request retrieval choices; None means the settings' default."""

    k: int | None = None
    strategy: Strategy | None = None
    pgvector_threshold: float | None = None
    chroma_threshold: float | None = None


class MatchWhy(TypedDict, total=False):
    """Why a product is listed (language-neutral; rendered to text by the agent's prompts)."""

    matched_terms: list[str]
    shared_terms: list[str]
    brand: str
    same_brand: str
    under: float
    over: float
    excludes: list[str]
    colors: list[str]
    price_vs_source: float


class ProductView(TypedDict):
    """A product, from the SQL row to the JSON response.

    `score` is the serving backend's own score: cosine similarity for pgvector and Chroma, `ts_rank` for
    full text, the RRF score for hybrid. `similarity` is always the cosine similarity of the product's
    vector to the query (None only when it is unknown). Detail fields are present after `product_details`.
    """

    product_id: str
    name: str
    brand: str | None
    price: float | None
    image_url: str | None
    score: float
    similarity: float | None
    backend: Backend
    why: NotRequired[MatchWhy]
    reason: NotRequired[str]  # `why` in the shopper's language, filled by the agent
    active: NotRequired[bool]
    rating: NotRequired[float | None]
    rating_count: NotRequired[int | None]
    color: NotRequired[str | None]
    category: NotRequired[str | None]
    in_stock: NotRequired[bool | None]
    highlights: NotRequired[list[str]]
    description: NotRequired[str]


def updated(product: ProductView, **changes: Any) -> ProductView:
    """A copy of a product with some fields changed (products are never mutated in place)."""
    return cast(ProductView, {**product, **changes})


def finite_or_none(value: Any) -> float | None:
    """`value` as a float, or None when it is missing, NaN or infinite (JSON cannot hold those)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


FallbackKind = Literal["unavailable", "disabled", "too_few"]
# The backends served by the catalog database (PostgreSQL).
CATALOG_DATABASE_BACKENDS: frozenset[Backend] = frozenset({"pgvector", "fulltext"})


@dataclass(frozen=True)
class FallbackReason:
    """Why a backend did not serve a search: it failed or is unreachable (`unavailable`), it is switched off
    (`disabled`), or it returned fewer results than needed above its threshold (`too_few`)."""

    backend: Backend
    kind: FallbackKind
    detail: str = ""

    def __str__(self) -> str:
        """The human-readable reason, as logged, traced and returned in `fallback_reason`."""
        match self.kind:
            case "unavailable":
                return f"{self.backend} unavailable: {self.detail}"
            case "disabled":
                return f"{self.backend} disabled ({self.detail})"
            case _:
                return f"{self.backend}: {self.detail}"

    @property
    def is_error(self) -> bool:
        """The backend could not answer (as opposed to answering with too little)."""
        return self.kind == "unavailable"


RankKey = Literal["similarity", "score"]


def ranked(products: list[ProductView], key: RankKey) -> list[ProductView]:
    """`products` best first by `key` (ties by id), without those whose `key` is missing or not finite. What every
    backend returns: an HNSW scan in relaxed order can hand rows back slightly out of order, and a stored vector
    that is all zeros has a NaN cosine distance, which PostgreSQL sorts last but lets through `>= threshold`."""
    kept = [(value, p) for p in products if (value := finite_or_none(p[key])) is not None]
    return [p for _, p in sorted(kept, key=lambda vp: (-vp[0], vp[1]["product_id"]))]


def figures(products: list[ProductView]) -> dict[str, Any]:
    """Quality figures of a result list: count, top-1 and mean cosine similarity (None without any)."""
    sims = [p["similarity"] for p in products if p["similarity"] is not None]
    return {
        "num_results": len(products),
        "top1_similarity": round(sims[0], 4) if sims else None,
        "mean_similarity": round(sum(sims) / len(sims), 4) if sims else None,
    }


@dataclass
class SearchResult:
    """What a strategy returns: products (best first) plus where they came from and why."""

    products: list[ProductView]
    strategy: str
    backend: Backend
    fallbacks: list[FallbackReason] = field(default_factory=list)
    weak_matches: bool = False  # products are below the threshold but above the relaxed floor
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def fallback_reason(self) -> str | None:
        """All fallback reasons as one string (None when the primary backend served)."""
        return "; ".join(str(f) for f in self.fallbacks) or None

    @property
    def errors(self) -> list[FallbackReason]:
        """The backends that failed (not those that merely returned too little)."""
        return [f for f in self.fallbacks if f.is_error]

    @property
    def degraded(self) -> bool:
        """The catalog database could not answer: these results come from Chroma alone (no full text, no reads of
        the detail fields) and may be less complete."""
        return any(f.backend in CATALOG_DATABASE_BACKENDS for f in self.errors)

    @property
    def figures(self) -> dict[str, Any]:
        """`figures(products)`: computed here once for traces, feedback and the API."""
        return figures(self.products)
