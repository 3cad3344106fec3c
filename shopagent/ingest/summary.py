"""The shape every bulk run reports (ingest, Chroma copy): counts, errors with samples and the ids that failed,
time, coverage."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MAX_ERROR_SAMPLES = 10
MAX_FAILED_IDS = 1000


@dataclass
class RunSummary:
    """Errors (with the first few messages and the ids that failed), seconds and the embedding coverage after
    the run."""

    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    failed_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0
    coverage_pct: float = 0.0

    def note_error(self, message: str) -> None:
        """Keep the first few error messages for the summary (`errors` is counted by the caller)."""
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(message)

    def fail(self, ids: list[str], message: str) -> None:
        """Count products that failed, keeping their ids (the first MAX_FAILED_IDS) and the message."""
        self.errors += len(ids)
        self.failed_ids.extend(ids[: max(0, MAX_FAILED_IDS - len(self.failed_ids))])
        self.note_error(message)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {**asdict(self), "seconds": round(self.seconds, 2)}
