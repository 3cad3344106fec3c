"""Privacy of everything sent to LangSmith: user ids pseudonymised (HMAC), connection strings and keys
redacted, and free text hidden when `LANGSMITH_HIDE_INPUTS=true` (enumerations, ids and figures stay readable)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

HIDDEN = "[hidden]"
REDACTED = "[redacted]"

_DSN = re.compile(
    r"\b[a-z][a-z0-9+.-]*://[^\s/'\"@]*:[^\s/'\"@]*@[^\s'\"]*|\bpostgres(?:ql)?(?:\+\w+)?://[^\s'\"]*", re.IGNORECASE
)
_KEYWORD_SECRET = re.compile(r"\b(password|passwd|pwd|api[_-]?key|secret|token)\s*[=:]\s*[^\s,;'\"]+", re.IGNORECASE)
_KEY_LIKE = re.compile(r"\b(?:lsv2_[A-Za-z0-9_]+|ls__[A-Za-z0-9]+|sk-[A-Za-z0-9_-]{16,})|\bBearer\s+[^\s'\"]+")
# Anything a scrubbing rule could apply to (DSN, secret-ish word or field name, key prefix, user field).
# Most payloads (product hits, figures) contain none of these, and then one scan of their JSON suffices;
# plain substring tests on the lower-cased text are ~10x faster than one alternation regex.
_SUSPECT = (
    "://",
    "pass",
    "pwd",
    "key",
    "secret",
    "token",
    "auth",
    "dsn",
    "database",
    "conninfo",
    "lsv2_",
    "ls__",
    "sk-",
    "bearer",
    '"user"',
    '"user_id"',
    '"userid"',
)
_SECRET_FIELD = re.compile(
    r"password|passwd|secret|api_?key|token$|authorization|dsn|database_url|conninfo", re.IGNORECASE
)
_USER_FIELDS = frozenset({"user", "user_id", "userid"})
_PSEUDONYM = re.compile(r"u_[0-9a-f]{16}")
# A user field that already holds a pseudonym needs no rewriting; every run of a turn inherits one in its
# metadata, and without this the fast path below would never apply.
_PSEUDONYMOUS_USER = re.compile(r'"user": "u_[0-9a-f]{16}"')
# Fields whose strings stay readable when message text is hidden: enumerations, ids, model names.
_KEEP_WHEN_HIDDEN = frozenset(
    {
        "strategy",
        "backend",
        "primary",
        "served_by",
        "fallback_reason",
        "product_id",
        "product_ids",
        "id",
        "ids",
        "run_id",
        "thread_id",
        "intent",
        "language",
        "type",
        "role",
        "name",
        "tool",
        "run_type",
        "error",
        "model",
        "model_name",
        "embedding_model",
        "chat_model",
        "revision_id",
        "status",
        "node",
        "langgraph_node",
    }
)


def _suspect(text: str) -> bool:
    """Could any scrubbing rule apply to `text`?"""
    low = text.lower()
    return any(token in low for token in _SUSPECT)


@lru_cache(maxsize=512)
def _field_rule(field: str) -> str:
    """How strings under a field name are treated: 'secret', 'user', 'keep' (readable when hiding) or 'text'."""
    name = field.lower()
    if _SECRET_FIELD.search(name):
        return "secret"
    if name in _USER_FIELDS:
        return "user"
    return "keep" if name in _KEEP_WHEN_HIDDEN or name.startswith("ls_") else "text"


def scrub_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known secret values, DSNs, `password=...` pairs and API-key-like tokens redacted."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if not _suspect(text):  # the common case (ids, names, figures): one cheap scan
        return text
    text = _DSN.sub(REDACTED, text)
    text = _KEYWORD_SECRET.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _KEY_LIKE.sub(REDACTED, text)


class TraceScrubber:
    """The client's anonymizer: applied to every run's inputs, outputs, metadata and error before sending."""

    def __init__(self, *, hide_text: bool, salt: str, secrets: Iterable[str] = ()):
        """`hide_text` masks free text; `secrets` are literal values that must never leave the process."""
        self.hide_text = hide_text
        self.salt = salt
        self.secrets = tuple(s for s in secrets if s and len(s) >= 4)
        # As they would appear inside a JSON dump (quotes or backslashes in a secret get escaped).
        self._dumped_secrets = tuple({x for s in self.secrets for x in (s, json.dumps(s, ensure_ascii=False)[1:-1])})

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        """Scrub one payload dict (unchanged, after one scan of its JSON, when no rule can apply)."""
        if not self.hide_text:
            dumped = json.dumps(data, ensure_ascii=False, default=str)
            if not _suspect(_PSEUDONYMOUS_USER.sub("", dumped)) and not any(s in dumped for s in self._dumped_secrets):
                return data
        scrubbed: dict[str, Any] = self._walk(data, "")
        return scrubbed

    def text(self, value: str, field: str = "") -> str:
        """Scrub one string found under `field`."""
        match _field_rule(field):
            case "secret":
                return REDACTED
            case "user":
                return value if _PSEUDONYM.fullmatch(value) else pseudonymise(value, self.salt)
            case "text" if self.hide_text:
                return HIDDEN
        return scrub_secrets(value, self.secrets)

    def _walk(self, value: Any, field: str) -> Any:
        """Recurse through dicts and lists; strings inherit the name of the field that holds them.
        Payloads arrive JSON round-tripped (plain types), so exact type checks suffice and are cheapest."""
        kind = type(value)
        if kind is str:
            return self.text(value, field)
        if kind is dict:
            return {k: self._walk(v, k) for k, v in value.items()}
        if kind is list or kind is tuple:
            return [self._walk(v, field) for v in value]
        return value


class ScrubLogRecords(logging.Filter):
    """langsmith's own error logs quote request details (a masked API key among them): keep the
    message, scrubbed, and drop the traceback."""

    def __init__(self, secrets: Iterable[str]):
        """Remember the configured secrets."""
        super().__init__()
        self._secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it."""
        record.msg = scrub_secrets(record.getMessage(), self._secrets)
        record.args = None
        record.exc_info = record.exc_text = None
        return True


def pseudonymise(user_id: str, salt: str) -> str:
    """A stable, non-reversible stand-in for a user id (HMAC-SHA256, first 16 hex chars)."""
    return "u_" + hmac.new(salt.encode(), user_id.encode(), hashlib.sha256).hexdigest()[:16]
