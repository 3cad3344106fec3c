"""What a feed row can get wrong, in one closed vocabulary: an `Issue` per repaired, nulled or rejected value,
and the `RowReport` that carries a row's issues to the summary and the rejects file.

Actions: `rejected` (the row is not stored), `repaired` (a value was changed so it can be stored: control
characters removed, a number taken as text...), `nulled` (a value was unusable or out of range and is stored as
NULL, or as the field's default, with a warning).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

Action = Literal["rejected", "repaired", "nulled"]
Reason = Literal[
    # rejected rows
    "malformed_json",
    "malformed_csv",
    "not_an_object",
    "missing_id",
    "bad_id",
    "database_rejected",
    # repaired values
    "control_characters",
    "invalid_unicode",
    "coerced_type",
    "duplicate_id",
    # nulled values
    "wrong_type",
    "price_negative",
    "price_not_finite",
    "price_out_of_range",
    "price_unparseable",
    "price_currency_mismatch",
    "number_out_of_range",
    "number_unparseable",
    "bool_unparseable",
    "url_invalid",
]


@dataclass(frozen=True)
class Issue:
    """One problem with one value (`field` None: the whole row)."""

    action: Action
    reason: Reason
    field: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly, without empty keys."""
        out: dict[str, Any] = {"action": self.action, "reason": self.reason}
        if self.field:
            out["field"] = self.field
        if self.detail:
            out["detail"] = self.detail
        return out


Issues = list[Issue]


@dataclass
class RowReport:
    """A feed row that had issues: where it is in the feed, its id when known, and its raw record."""

    where: str
    product_id: str | None
    issues: Issues
    record: Any = None

    @property
    def rejected(self) -> bool:
        """The row was not stored."""
        return any(i.action == "rejected" for i in self.issues)

    def as_dict(self, with_record: bool = False) -> dict[str, Any]:
        """JSON-friendly; `with_record` adds the raw record (the rejects file, so a row can be fixed and re-fed)."""
        out: dict[str, Any] = {
            "where": self.where,
            "id": self.product_id,
            "action": "rejected" if self.rejected else "repaired",
            "issues": [i.as_dict() for i in self.issues],
        }
        if with_record:
            out["record"] = json_safe(self.record)
        return out


def json_safe(value: Any) -> Any:
    """`value` with what strict JSON cannot hold made printable: non-finite floats and unknown types as strings
    (lone surrogates are escaped by `json.dumps`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@dataclass
class RejectsFile:
    """The `--rejects PATH` JSONL file: one line per rejected or repaired row, with its raw record."""

    path: Path
    written: int = 0
    _fh: IO[str] | None = field(default=None, repr=False)

    def write(self, report: RowReport) -> None:
        """Append one row (the file is created on first use, truncated if it existed)."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("w", encoding="utf-8")
        self._fh.write(json.dumps(report.as_dict(with_record=True), ensure_ascii=True, allow_nan=False) + "\n")
        self.written += 1

    def close(self) -> None:
        """Flush and close (an untouched file is created empty, so 'no rejects' is visible)."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("", encoding="utf-8")
        else:
            self._fh.close()
            self._fh = None
