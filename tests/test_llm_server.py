"""shopagent.llm_server without building anything: cache location, the server's command line, the weights'
sha256 check on an existing file. The real server with a real model runs in tests/test_llm_real.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from shopagent.llm_server import CMAKE_FLAGS, MODELS, ModelSpec, cache_dir, ensure_model, server_command


def test_cache_dir_env_and_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Argument, then SHOPAGENT_CACHE_DIR, then $XDG_CACHE_HOME/shopagent."""
    monkeypatch.delenv("SHOPAGENT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "shopagent"
    monkeypatch.setenv("SHOPAGENT_CACHE_DIR", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env" and cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert (tmp_path / "arg").is_dir()


def test_build_flags_portable() -> None:
    """One binary for every machine here: explicit AVX2-level flags, never native or AVX-512."""
    assert "-DGGML_NATIVE=OFF" in CMAKE_FLAGS and "-DGGML_AVX2=ON" in CMAKE_FLAGS
    assert not [f for f in CMAKE_FLAGS if "AVX512" in f and f.endswith("=ON")]


def test_server_command_enables_tool_calling_template() -> None:
    """--jinja (the GGUF's chat template, which renders the tools), two slots, threads for both phases."""
    cmd = server_command(Path("/b/llama-server"), Path("/m.gguf"), "qwen2.5-coder-0.5b", "127.0.0.1", 8099, 4096, 2)
    assert cmd[0] == "/b/llama-server" and "--jinja" in cmd
    for flag, value in (("--ctx-size", "4096"), ("--threads", "2"), ("--threads-batch", "2"), ("--parallel", "2"),
                        ("--alias", "qwen2.5-coder-0.5b"), ("--port", "8099")):  # fmt: skip
        assert cmd[cmd.index(flag) + 1] == value


def test_ensure_model_trusts_a_verified_file_and_rehashes_on_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An existing file with the pinned sha256 is used as is (stamp written); nothing is installed."""
    data = b"GGUF" + b"\0" * 1000
    spec = ModelSpec(
        "tiny.gguf", "no-such-package", "0", parts=1, size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    monkeypatch.setitem(MODELS, "qwen2.5-coder-0.5b", spec)
    monkeypatch.setattr("shopagent.llm_server.subprocess.run", lambda *a, **k: pytest.fail(f"ran {a}"))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.gguf").write_bytes(data)
    path = ensure_model("qwen2.5-coder-0.5b", tmp_path)
    assert path == tmp_path / "models" / "tiny.gguf"
    assert json.loads((tmp_path / "models" / "tiny.verified").read_text())[0] == spec.sha256
    assert ensure_model("qwen2.5-coder-0.5b", tmp_path, verify=True) == path
