"""Text that PostgreSQL, UTF-8 or JSON cannot hold, in every field that reaches them: free text is cleaned at the
edge (NUL and other controls removed, lone surrogates replaced), ids are refused with a 422 naming the field, and
nothing is ever a 500. Then schemathesis over the app's OpenAPI schema with the "not a server error" check."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from agent.api import create_app
from shopagent.services import Services
from shopagent.text import clean_text

MSG = "/api/v1/chat/message"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[TestClient]:
    """One app for the module."""
    with TestClient(create_app(services=services)) as c:
        yield c


def send(client: TestClient, path: str, body: dict[str, Any], method: str = "POST") -> Any:
    """`body` as JSON text with \\u escapes (what a client sends for characters UTF-8 cannot encode)."""
    return client.request(method, path, content=json.dumps(body, ensure_ascii=True), headers=JSON)


def test_clean_text() -> None:
    """Hand-worked: NUL and other controls go (tab/newline/CR stay), lone surrogates become U+FFFD, NFC."""
    assert clean_text("red shoes\x00 under $50") == "red shoes under $50"
    assert clean_text("\udcff socks") == "\ufffd socks"
    assert clean_text("\udc00\ud800 x") == "\ufffd\ufffd x"  # a pair in the wrong order is two lone halves
    assert clean_text("a\tb\nc\r\x07d\x1be\x7ff\x85g\x9fh") == "a\tb\nc\rdefgh"
    assert clean_text("cafe\u0301 \ufeff\uffff 😀") == "café \ufeff\uffff 😀"


BAD_MESSAGES = [
    ("red shoes\x00 under $50", "red shoes under $50"),  # the NUL
    ("\udcff socks", "\ufffd socks"),  # the lone surrogate
    ("\ud800 leather belts", "\ufffd leather belts"),
    ("slippers \udc00\ud800", "slippers \ufffd\ufffd"),
    ("ugg\x1b[31m slippers\x7f\x85", "ugg[31m slippers"),
    ("\x00\x00 tresemme \x00shampoo", "tresemme shampoo"),  # leading NULs (stripped after cleaning)
    ("\ufeffbelts \uffff", "\ufeffbelts \uffff"),  # valid code points are kept
]


@pytest.mark.parametrize(("message", "stored"), BAD_MESSAGES)
def test_bad_text_in_a_message_is_cleaned(client: TestClient, message: str, stored: str) -> None:
    """The message is answered (JSON and stream), stored cleaned in the checkpointer, echoed cleaned."""
    user, session = f"u-{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:8]}"
    r = send(client, MSG, {"user_id": user, "message": message, "session_id": session})
    assert r.status_code == 200, r.text
    assert "\x00" not in r.text and "\\u0000" not in r.text
    r = send(client, f"{MSG}/stream", {"user_id": user, "message": message, "session_id": session})
    assert r.status_code == 200 and "event: final" in r.text, r.text
    history = client.get("/api/v1/chat/history", params={"user_id": user, "session_id": session}).json()
    assert [m["content"] for m in history["messages"] if m["role"] == "user"] == [stored.strip()] * 2


@pytest.mark.parametrize("bad", ["\x00", "\udcff", "a\ud800b", "\x1b", "x\x00"])
@pytest.mark.parametrize("field", ["user_id", "session_id"])
def test_bad_text_in_an_id_is_422_naming_it(client: TestClient, field: str, bad: str) -> None:
    """Ids have a strict pattern: 422 naming the field, with a body that is valid UTF-8 JSON."""
    body = {"user_id": "u1", "message": "ugg slippers", field: bad}
    for path in (MSG, f"{MSG}/stream"):
        r = send(client, path, body)
        assert r.status_code == 422, r.text
        assert [e["loc"][-1] for e in r.json()["detail"]] == [field]
        r.content.decode("utf-8")
    params = {"user_id": "u1", "session_id": "s1"}
    # In a URL the character is percent-encoded bytes (a surrogate as its CESU-8 bytes, invalid UTF-8).
    params[field] = quote(bad.encode("utf-8", "surrogatepass"))
    r = client.get("/api/v1/chat/history?" + "&".join(f"{k}={v}" for k, v in params.items()))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", field]
    r = send(client, "/api/v1/chat/session", {"user_id": "u1", "session_id": "s1", field: bad}, "DELETE")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == field


def test_feedback_comment_and_odd_bodies(client: TestClient) -> None:
    """A feedback comment is cleaned; an only-NUL message is empty (422); raw bytes that are not UTF-8, in JSON or
    not, are refused without a 500."""
    run_id = str(uuid.uuid4())
    for comment in ("great\x00", "\udcff", "ok \ud83d"):
        r = send(client, "/api/v1/chat/feedback", {"run_id": run_id, "score": 1, "comment": comment})
        assert r.status_code == 202, r.text
    r = send(client, MSG, {"user_id": "u1", "message": "\x00\x00"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "message"]
    for headers in (JSON, {"content-type": "text/plain"}, {}):
        r = client.post(MSG, content=b'{"user_id":"u1","message":"\xff\xfe socks \xed\xb3\xbf"}', headers=headers)
        assert r.status_code in (400, 422), (headers, r.status_code, r.text)
    r = client.get("/api/v1/chat/history?user_id=%ED%B3%BF&session_id=%00")
    assert r.status_code == 422


# ---------------------------------------------------------------- schemathesis over the OpenAPI schema

EXAMPLES = 25  # per operation and mode (valid and invalid inputs): a few hundred requests in all


def test_no_server_error(client: TestClient) -> None:
    """Every operation of the app's own OpenAPI schema, with generated inputs both valid and invalid (strings may
    hold NUL): never a 5xx. Driven through hypothesis directly (schemathesis' pytest plugin does not load under
    this pytest), on the app already running."""
    api = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    api.config.generation.update(allow_x00=True)
    base_url = str(client.base_url)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 5
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
            def no_server_error(case: Any) -> None:
                response = client.request(**case.as_transport_kwargs(base_url=base_url))
                case.validate_response(response, checks=[not_a_server_error])

            try:
                no_server_error()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to make invalid (GET /health)
