"""LangSmith helpers: add figures to the current run; pseudonymise ids. No-ops when tracing is off."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from langsmith.run_helpers import get_current_run_tree


def annotate(**metadata: Any) -> None:
    """Merge `metadata` into the current traced run's metadata, if there is one."""
    run = get_current_run_tree()
    if run is not None:
        run.metadata.update({k: v for k, v in metadata.items() if v is not None})


def add_tags(*tags: str) -> None:
    """Add tags to the current traced run, if there is one."""
    run = get_current_run_tree()
    if run is not None:
        run.tags = list(dict.fromkeys([*(run.tags or []), *tags]))


def pseudonymise(user_id: str, salt: str) -> str:
    """A stable, non-reversible stand-in for a user id (HMAC-SHA256, first 16 hex chars)."""
    return "u_" + hmac.new(salt.encode(), user_id.encode(), hashlib.sha256).hexdigest()[:16]
