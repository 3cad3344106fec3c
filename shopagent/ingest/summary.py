"""The shape every bulk run reports (ingest, Chroma copy): counts, errors with samples, time, coverage."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MAX_ERROR_SAMPLES = 10


@dataclass
class RunSummary:
    """Errors (with the first few messages), seconds and the embedding coverage after the run."""

    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    seconds: float = 0.0
    coverage_pct: float = 0.0

    def note_error(self, message: str) -> None:
        """Keep the first few error messages for the summary (`errors` is counted by the caller)."""
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(message)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {**asdict(self), "seconds": round(self.seconds, 2)}
