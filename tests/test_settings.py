"""Settings come from the environment only through `Settings` (validated, secrets hidden)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shopagent.settings import STRATEGIES, Settings


def test_defaults_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing set: hybrid strategy, pgvector on, embedded database, no LLM."""
    for var in ("PRODUCT_SEARCH_STRATEGY", "USE_PGVECTOR", "DATABASE_URL", "OLLAMA_BASE_URL", "OLLAMA_CHAT_MODEL",
                "LLM_MODEL", "LLM_BASE_URL"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.product_search_strategy == "hybrid" and s.product_search_strategy in STRATEGIES
    assert s.use_pgvector is True and s.database_url is None and s.llm_enabled is False


def test_env_knobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strategy, thresholds, k and the pgvector switch are read from the environment, typed."""
    monkeypatch.setenv("PRODUCT_SEARCH_STRATEGY", "chroma_primary")
    monkeypatch.setenv("PGVECTOR_SIMILARITY_THRESHOLD", "0.5")
    monkeypatch.setenv("CHROMA_SIMILARITY_THRESHOLD", "0.42")
    monkeypatch.setenv("SEARCH_K", "7")
    monkeypatch.setenv("USE_PGVECTOR", "false")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.product_search_strategy == "chroma_primary"
    assert s.pgvector_similarity_threshold == 0.5 and s.chroma_similarity_threshold == 0.42
    assert s.search_k == 7 and s.use_pgvector is False


def test_database_url_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The DSN (with its password) never shows in repr/str, but is available to connect."""
    dsn = "postgresql://shop:hunter2-secret@db.internal:5432/shop"
    monkeypatch.setenv("DATABASE_URL", dsn)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.database_url is not None and s.database_url.get_secret_value() == dsn
    assert "hunter2-secret" not in repr(s) and "hunter2-secret" not in str(s)
    assert "hunter2-secret" not in s.model_dump_json()


LLM_VARS = ("LLM_PROVIDER", "LLM_BASE_URL", "LLM_MODEL", "LLM_API_KEY", "LLM_READ_TIMEOUT_S", "OLLAMA_BASE_URL",
            "OLLAMA_CHAT_MODEL", "OLLAMA_TIMEOUT_S")  # fmt: skip


def test_llm_provider_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """LLM_* configure the LLM brain: an OpenAI-compatible server with a secret key; the OpenAI provider without
    a base URL means the hosted API, enabled only with a key."""
    for var in LLM_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LLM_PROVIDER", "openai")
    monkeypatch.setenv("LLM_MODEL", "qwen2.5-coder-1.5b")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.llm_url is None and s.llm_enabled is False
    monkeypatch.setenv("LLM_API_KEY", "sk-very-secret")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.llm_enabled and "sk-very-secret" not in repr(s) and "sk-very-secret" not in s.model_dump_json()
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:8080/v1")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.llm_url == "http://127.0.0.1:8080/v1" and s.llm_enabled
    monkeypatch.setenv("LLM_PROVIDER", "anthropic")
    with pytest.raises(ValidationError, match="llm_provider"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_old_ollama_names_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """OLLAMA_BASE_URL / OLLAMA_CHAT_MODEL / OLLAMA_TIMEOUT_S configure the Ollama provider as before."""
    for var in LLM_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://127.0.0.1:11434")
    monkeypatch.setenv("OLLAMA_CHAT_MODEL", "llama3.1")
    monkeypatch.setenv("OLLAMA_TIMEOUT_S", "12")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.llm_provider, s.llm_url, s.llm_model, s.llm_read_timeout_s) == (
        "ollama", "http://127.0.0.1:11434", "llama3.1", 12.0)  # fmt: skip
    assert s.llm_enabled and s.ollama_timeout_s == 12.0  # the embeddings' timeout too
    monkeypatch.setenv("LLM_BASE_URL", "http://gpu-box:11434")
    assert Settings(_env_file=None).llm_url == "http://gpu-box:11434"  # type: ignore[call-arg]


def test_blank_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`OLLAMA_BASE_URL=` (blank, as in a copied .env) is None, not an empty URL."""
    monkeypatch.setenv("OLLAMA_BASE_URL", "  ")
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("OLLAMA_CHAT_MODEL", "llama3.2")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.ollama_base_url is None and s.database_url is None
    assert s.llm_enabled is False
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://127.0.0.1:11434")
    assert Settings(_env_file=None).llm_enabled is True  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("PRODUCT_SEARCH_STRATEGY", "bm25_only"),
        ("PGVECTOR_SIMILARITY_THRESHOLD", "1.5"),
        ("SEARCH_K", "0"),
        ("EMBEDDING_PROVIDER", "openai"),
        ("HNSW_ITERATIVE_SCAN", "sometimes"),
        ("INDEX_BUILD_MAINTENANCE_WORK_MEM", "1GB; DROP TABLE products"),
        ("FULLTEXT_CANDIDATES", "0"),
    ],
)
def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    """A bad value fails at start-up with the field named, instead of misbehaving later."""
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError, match=var.lower()):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_env_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `.env` file is honoured, and the real environment wins over it."""
    env = tmp_path / ".env"
    env.write_text("PRODUCT_SEARCH_STRATEGY=pgvector_primary\nSEARCH_K=12\n", encoding="utf-8")
    monkeypatch.delenv("PRODUCT_SEARCH_STRATEGY", raising=False)
    monkeypatch.setenv("SEARCH_K", "3")
    s = Settings(_env_file=env)  # type: ignore[call-arg]
    assert s.product_search_strategy == "pgvector_primary" and s.search_k == 3


def test_embedding_model_selects_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """EMBEDDING_MODEL names the model in use: the local provider only has the packaged MiniLM (anything else
    fails at start-up instead of being reported while another model runs); Ollama takes the name given, and the
    old OLLAMA_API_MODEL_EMBEDDING spelling still works."""
    monkeypatch.delenv("EMBEDDING_MODEL", raising=False)
    assert Settings(_env_file=None).embedding_model_id == "all-MiniLM-L6-v2"  # type: ignore[call-arg]
    monkeypatch.setenv("EMBEDDING_MODEL", "bge-small-en")
    with pytest.raises(ValidationError, match="not available locally"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("EMBEDDING_PROVIDER", "ollama")
    assert Settings(_env_file=None).embedding_model_id == "bge-small-en"  # type: ignore[call-arg]
    monkeypatch.delenv("EMBEDDING_MODEL")
    monkeypatch.setenv("OLLAMA_API_MODEL_EMBEDDING", "mxbai-embed-large")
    assert Settings(_env_file=None).embedding_model_id == "mxbai-embed-large"  # type: ignore[call-arg]


def test_scale_knobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HNSW, full-text, bulk and past-one-machine knobs are read typed; blank hosts mean unset; pgvector's rule
    ef_construction >= 2 * m is checked at start-up."""
    for name, value in {
        "HNSW_M": "24",
        "HNSW_EF_CONSTRUCTION": "128",
        "HNSW_HALFVEC": "true",
        "HNSW_ITERATIVE_SCAN": "strict_order",
        "HNSW_MAX_SCAN_TUPLES": "5000",
        "INDEX_BUILD_MAINTENANCE_WORK_MEM": "512MB",
        "FULLTEXT_CANDIDATES": "300",
        "CHROMA_HOST": " ",
        "DATABASE_READ_URL": "postgresql://reader:pw@replica/shop",
    }.items():
        monkeypatch.setenv(name, value)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.hnsw_m, s.hnsw_ef_construction, s.hnsw_halfvec, s.hnsw_iterative_scan) == (24, 128, True, "strict_order")
    assert (s.hnsw_max_scan_tuples, s.index_build_maintenance_work_mem, s.fulltext_candidates) == (5000, "512MB", 300)
    assert s.chroma_host is None and s.database_read_url is not None and "pw" not in repr(s)
    monkeypatch.setenv("HNSW_EF_CONSTRUCTION", "40")
    with pytest.raises(ValidationError, match="at least 2 \\* HNSW_M"):
        Settings(_env_file=None)  # type: ignore[call-arg]
