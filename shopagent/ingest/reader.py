"""Reading catalog feeds: JSONL / JSONL.gz / CSV records (`FeedRecord`s, a malformed line is one too, carrying
why) normalised into `ProductRow`s by `normalise`. Patchy fields are normal: nulls never drop a product; bad
values are cleaned or nulled (`shopagent.ingest.fields`) and every change is noted as an `Issue`."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopagent.db.source import read_query
from shopagent.db.writes import ProductRow
from shopagent.embeddings.text import content_hash, product_text
from shopagent.ingest.fields import (
    PriceRules,
    clean_bool,
    clean_json,
    clean_list,
    clean_number,
    clean_optional,
    clean_text,
    clean_url,
    parse_price,
    scrub,
)
from shopagent.ingest.issues import Issue, Issues

# The fields a record may carry (anything else is kept in `attributes`); `id`/`title`/`image` are synonyms.
FIELDS = (
    "product_id",
    "name",
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
    "image_url",
    "attributes",
    "deleted",
)
_SYNONYMS = {"id": "product_id", "title": "name", "image": "image_url"}
_KNOWN_FIELDS = frozenset(FIELDS) | frozenset(_SYNONYMS)
MAX_RATING = 5.0
MAX_COUNT = 2**31 - 1  # PostgreSQL integer
_RAW_LINE_CHARS = 2000


class CatalogError(ValueError):
    """The catalog file cannot be read."""


class RowRejected(CatalogError):
    """A record that cannot be stored (no usable id); `issue` says why."""

    def __init__(self, issue: Issue):
        """Carry the issue."""
        super().__init__(f"{issue.reason}: {issue.detail}" if issue.detail else issue.reason)
        self.issue = issue


@dataclass(frozen=True)
class FeedRecord:
    """One record of a feed: where it is, the object read (None when the line could not be parsed), what went
    wrong while reading it, and the raw line when it could not be parsed (for the rejects file)."""

    where: str
    data: dict[str, Any] | None
    issues: tuple[Issue, ...] = ()
    raw: str | None = None


def _lines(path: Path, issues: Issues) -> Iterator[str]:
    """Decoded lines (newlines kept); a UTF-8 BOM is dropped, undecodable bytes replaced (noted in `issues`,
    which the caller drains per record)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        for n, data in enumerate(fh):
            encoding = "utf-8-sig" if n == 0 else "utf-8"
            try:
                yield data.decode(encoding)
            except UnicodeDecodeError:
                issues.append(Issue("repaired", "invalid_unicode", None, "bytes that are not UTF-8 replaced"))
                yield data.decode(encoding, errors="replace")


def _jsonl_records(path: Path) -> Iterator[FeedRecord]:
    """Records of a JSON-lines file; blank lines are skipped."""
    pending: Issues = []
    for lineno, line in enumerate(_lines(path, pending), 1):
        issues, pending[:] = tuple(pending), []
        if not line.strip():
            continue
        where = f"line {lineno}"
        try:
            data = json.loads(line)
        except ValueError as exc:
            problem = Issue("rejected", "malformed_json", None, str(exc)[:200])
            yield FeedRecord(where, None, (*issues, problem), line[:_RAW_LINE_CHARS])
            continue
        if not isinstance(data, dict):
            problem = Issue("rejected", "not_an_object", None, type(data).__name__)
            yield FeedRecord(where, None, (*issues, problem), line[:_RAW_LINE_CHARS])
            continue
        yield FeedRecord(where, data, issues)


def _csv_records(path: Path) -> Iterator[FeedRecord]:
    """Records of a CSV file with a header row; a row with more or fewer fields than the header is malformed."""
    pending: Issues = []
    reader = csv.DictReader(_lines(path, pending))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problem = Issue("rejected", "malformed_csv", None, str(exc)[:200])
            yield FeedRecord(f"line {reader.line_num}", None, (*pending, problem))
            pending.clear()
            continue
        issues, pending[:] = tuple(pending), []
        where = f"line {reader.line_num}"
        width = len(reader.fieldnames or ())
        extra, missing = row.pop(None, None), sum(v is None for v in row.values())
        if extra or missing:
            found = width + len(extra or ()) - missing
            problem = Issue("rejected", "malformed_csv", None, f"{found} fields, the header has {width}")
            raw = json.dumps({**row, "(extra fields)": extra} if extra else row, default=str)
            yield FeedRecord(where, None, (*issues, problem), raw[:_RAW_LINE_CHARS])
            continue
        yield FeedRecord(where, dict(row), issues)


def read_catalog(path: Path) -> Iterator[FeedRecord]:
    """The records of a .jsonl / .ndjson / .json (one object a line), optionally .gz, or .csv file.

    Raises CatalogError for a missing file or an unknown format; a malformed line is a record carrying a
    `rejected` issue, never an exception."""
    if not path.exists():
        raise CatalogError(f"catalog not found: {path}")
    base = path.name.lower().removesuffix(".gz")
    if base.endswith((".jsonl", ".json", ".ndjson")):
        return _jsonl_records(path)
    if base.endswith(".csv"):
        return _csv_records(path)
    raise CatalogError(f"unsupported catalog format: {path.name} (use .jsonl, .jsonl.gz or .csv)")


def read_source(dsn: str, query: str, batch_size: int = 1000) -> Iterator[FeedRecord]:
    """The rows of a query on a shop's own PostgreSQL, as records (see `shopagent.db.source.read_query`)."""
    for n, row in enumerate(read_query(dsn, query, batch_size), 1):
        yield FeedRecord(f"row {n}", row)


def as_records(items: Iterable[FeedRecord | dict[str, Any]]) -> Iterator[FeedRecord]:
    """Feed records from records or plain dicts (library callers pass dicts)."""
    for n, item in enumerate(items, 1):
        yield item if isinstance(item, FeedRecord) else FeedRecord(f"record {n}", item)


def _product_id(raw: dict[str, Any]) -> str:
    """The record's id as text; RowRejected when it has none usable."""
    value = raw.get("product_id")
    if value is None or value == "":
        value = raw.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        if value is None or value == "":
            raise RowRejected(Issue("rejected", "missing_id", "product_id"))
        raise RowRejected(Issue("rejected", "bad_id", "product_id", type(value).__name__))
    pid = scrub(str(value), "product_id", []).strip()
    if not pid:
        raise RowRejected(Issue("rejected", "missing_id", "product_id", "blank"))
    return pid


def _pick(raw: dict[str, Any], name: str) -> Any:
    """A field's value, or its synonym's when the field is missing or empty."""
    value = raw.get(name)
    if value is None or value == "":
        value = next((raw.get(s) for s, f in _SYNONYMS.items() if f == name and raw.get(s) not in (None, "")), value)
    return value


def normalise(
    raw: dict[str, Any], model: str, rules: PriceRules | None = None, issues: Issues | None = None
) -> ProductRow:
    """A raw catalog record as a ProductRow (no embedding yet); `deleted: true` gives an inactive row. What was
    repaired or nulled is appended to `issues`. Raises RowRejected for a record without a usable id."""
    issues = [] if issues is None else issues
    pid = _product_id(raw)
    rules = rules or PriceRules()
    attrs: dict[str, Any] = dict(raw["attributes"]) if isinstance(raw.get("attributes"), dict) else {}
    attrs.update({str(k): v for k, v in raw.items() if k not in _KNOWN_FIELDS and v not in (None, "")})
    name = clean_text(_pick(raw, "name"), "name", issues)
    description = clean_text(raw.get("description"), "description", issues)
    bullet_points = clean_list(raw.get("bullet_points"), "bullet_points", issues)
    brand = clean_optional(raw.get("brand"), "brand", issues)
    color = clean_optional(raw.get("color"), "color", issues)
    category = clean_list(raw.get("category"), "category", issues)
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
    count = clean_number(raw.get("rating_count"), "rating_count", issues, low=0, high=MAX_COUNT, integer=True)
    return ProductRow(
        id=pid,
        name=name,
        description=description,
        bullet_points=bullet_points,
        brand=brand,
        color=color,
        category=category,
        price=parse_price(raw.get("price"), rules, issues),
        rating=clean_number(raw.get("rating"), "rating", issues, low=0, high=MAX_RATING),
        rating_count=int(count) if count is not None else None,
        in_stock=clean_bool(raw.get("in_stock"), "in_stock", True, issues),
        is_book=clean_bool(raw.get("is_book"), "is_book", False, issues),
        image_url=clean_url(_pick(raw, "image_url"), "image_url", issues),
        attributes=clean_json(attrs, "attributes", issues),
        embedded_text=text,
        content_hash=content_hash(text, model),
        active=not clean_bool(raw.get("deleted"), "deleted", False, issues),
    )
