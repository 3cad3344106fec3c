"""Reading catalog feeds: JSONL / JSONL.gz / CSV records normalised into `ProductRow`s (patchy fields are
normal: nulls never drop a product)."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shopagent.db.writes import ProductRow
from shopagent.embeddings.text import content_hash, product_text

_KNOWN_FIELDS = {
    "product_id",
    "id",
    "name",
    "title",
    "description",
    "bullet_points",
    "brand",
    "color",
    "category",
    "price",
    "rating",
    "rating_count",
    "in_stock",
    "is_book",
    "image",
    "image_url",
    "attributes",
}


class CatalogError(ValueError):
    """The catalog file cannot be read."""


def read_catalog(path: Path) -> Iterator[dict[str, Any]]:
    """Raw product dicts from a .jsonl, .jsonl.gz, .json.gz or .csv file."""
    name = path.name.lower()
    if not path.exists():
        raise CatalogError(f"catalog not found: {path}")
    opener = gzip.open if name.endswith(".gz") else open
    base = name.removesuffix(".gz")
    with opener(path, "rt", encoding="utf-8") as fh:
        if base.endswith((".jsonl", ".json", ".ndjson")):
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise CatalogError(f"{path}:{lineno}: invalid JSON: {exc}") from exc
        elif base.endswith(".csv"):
            yield from csv.DictReader(fh)
        else:
            raise CatalogError(f"unsupported catalog format: {path.name} (use .jsonl, .jsonl.gz or .csv)")


def _as_list(value: Any) -> list[str]:
    """A list of non-empty strings from a list, a JSON-array string or a '|'-separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = [text]
        else:
            value = text.split("|")
    return [str(v).strip() for v in value if v is not None and str(v).strip()]


def _as_float(value: Any) -> float | None:
    """A float, or None for null/empty/unparseable values."""
    if value is None or value == "":
        return None
    try:
        f = float(str(value).replace("$", "").replace(",", ""))
    except ValueError:
        return None
    return f if f == f else None  # NaN -> None


def _as_bool(value: Any, default: bool) -> bool:
    """Booleans from JSON or CSV spellings."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "y", "t"}


def normalise(raw: dict[str, Any], model: str) -> ProductRow:
    """A raw catalog record as a ProductRow (no embedding yet). Nulls never drop a product."""
    pid = str(raw.get("product_id") or raw.get("id") or "").strip()
    if not pid:
        raise CatalogError("record without product_id")
    count = _as_float(raw.get("rating_count"))
    attrs = dict(raw.get("attributes") or {}) if isinstance(raw.get("attributes"), dict) else {}
    attrs.update({k: v for k, v in raw.items() if k not in _KNOWN_FIELDS and v not in (None, "")})
    name = str(raw.get("name") or raw.get("title") or "").strip()
    description = str(raw.get("description") or "").strip()
    bullet_points = _as_list(raw.get("bullet_points"))
    brand = str(raw.get("brand") or "").strip() or None
    color = str(raw.get("color") or "").strip() or None
    category = _as_list(raw.get("category"))
    text = product_text(
        {
            "name": name,
            "description": description,
            "bullet_points": bullet_points,
            "brand": brand,
            "color": color,
            "category": category,
        }
    )
    return ProductRow(
        id=pid,
        name=name,
        description=description,
        bullet_points=bullet_points,
        brand=brand,
        color=color,
        category=category,
        price=_as_float(raw.get("price")),
        rating=_as_float(raw.get("rating")),
        rating_count=int(count) if count is not None else None,
        in_stock=_as_bool(raw.get("in_stock"), True),
        is_book=_as_bool(raw.get("is_book"), False),
        image_url=str(raw.get("image") or raw.get("image_url") or "").strip() or None,
        attributes=attrs,
        embedded_text=text,
        content_hash=content_hash(text, model),
    )
