"""Text that UTF-8, PostgreSQL and JSON can all hold: the one cleaning applied where outside text comes in (the
API's free-text fields) and where it goes out (error bodies that echo a request)."""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 control characters and DEL, except tab, newline and carriage return. NUL is the one PostgreSQL text and
# JSONB refuse; the others are never meant in a message and confuse logs and terminals.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Surrogate code points never pair up in a decoded str (json turns valid pairs into one character): alone, UTF-8
# cannot encode them.
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """`value` without control characters (tab, newline and carriage return stay), with each lone surrogate replaced
    by U+FFFD, in Unicode NFC (so composed and decomposed accents search alike)."""
    value = _SURROGATES.sub("\ufffd", value)
    value = _CONTROLS.sub("", value)
    return unicodedata.normalize("NFC", value)
