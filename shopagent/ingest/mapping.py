"""Column mappings: which column of a source (a database query, or a file with its own field names) holds each
catalog field, from a TOML file and/or `--map FIELD=COLUMN` options.

    # mapping.toml
    [columns]
    product_id = "sku"
    name = "title"
    price = "unit_price"
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shopagent.ingest.reader import FIELDS, FeedRecord


@dataclass(frozen=True)
class ColumnMapping:
    """field -> source column. Columns not mapped are kept under their own names (our field names work as they
    are; any other column lands in `attributes`)."""

    columns: Mapping[str, str] = field(default_factory=dict)

    def apply(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record with mapped columns renamed to their fields."""
        if not self.columns:
            return record
        sources = set(self.columns.values())
        out = {k: v for k, v in record.items() if k not in sources}
        out.update({f: record[c] for f, c in self.columns.items() if c in record})
        return out

    def records(self, records: Iterable[FeedRecord]) -> Iterator[FeedRecord]:
        """Feed records with the mapping applied to each parsed object."""
        for rec in records:
            yield rec if rec.data is None or not self.columns else replace(rec, data=self.apply(rec.data))


def load_mapping(path: Path | None = None, options: Sequence[str] = ()) -> ColumnMapping:
    """A mapping from a TOML file's `[columns]` table, then `FIELD=COLUMN` options (which win). Raises
    ValueError naming the valid fields for an unknown field or a malformed option, OSError for an unreadable
    file."""
    columns: dict[str, str] = {}
    if path is not None:
        with path.open("rb") as fh:
            try:
                table = tomllib.load(fh).get("columns", {})
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{path}: {exc}") from exc
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise ValueError(f"{path}: [columns] must map field names to column names (strings)")
        columns.update(table)
    for option in options:
        name, sep, column = option.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise ValueError(f"--map {option!r}: use FIELD=COLUMN")
        columns[name.strip()] = column.strip()
    if unknown := sorted(set(columns) - set(FIELDS)):
        raise ValueError(f"unknown field(s) {', '.join(unknown)} in the column mapping; valid: {', '.join(FIELDS)}")
    return ColumnMapping(columns)
