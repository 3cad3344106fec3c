"""The int8 ONNX runtime of MiniLM: unit vectors close to the torch model's, exported once into the cache."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from shopagent.embeddings import make_embeddings, product_text
from shopagent.embeddings import onnx as emb
from shopagent.embeddings.onnx import OnnxMiniLMEmbeddings
from shopagent.embeddings.sbert import LocalMiniLMEmbeddings
from shopagent.ingest.reader import normalise
from shopagent.settings import Settings
from tests.conftest import read_products

# Measured over the 6,764 sample products at 64 tokens: cosine to the torch fp32 vectors 0.993 on average,
# 0.9795 at worst (per-tensor int8 weights: 0.946 / 0.876, hence per channel). Floors leave a margin.
MEAN_COS_FLOOR = 0.985
MIN_COS_FLOOR = 0.97


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache of this module's own (the export happens once, here)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def onnx_embeddings(cache_dir: Path) -> OnnxMiniLMEmbeddings:
    """The int8 ONNX model at the torch fixture's token cut-off, exported into `cache_dir`."""
    return OnnxMiniLMEmbeddings(cache_dir=cache_dir, max_seq_length=64)


@pytest.fixture(scope="module")
def product_texts() -> list[str]:
    """Twenty real product texts, as ingest builds them."""
    return [normalise(raw, "m").embedded_text for raw in read_products()[:20]]


def test_unit_length_384(onnx_embeddings: OnnxMiniLMEmbeddings, product_texts: list[str]) -> None:
    """Documents and a query come back 384-dim and unit length, in input order (not the sorted one)."""
    docs = np.array(onnx_embeddings.embed_documents(product_texts))
    query = np.array(onnx_embeddings.embed_query("waterproof hiking boots"))
    assert docs.shape == (20, 384) and query.shape == (384,) and onnx_embeddings.dimension == 384
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5) and abs(np.linalg.norm(query) - 1) < 1e-5
    alone = np.array(onnx_embeddings.embed_documents([product_texts[7]]))[0]
    # Dynamic quantisation scales activations per batch, so a text's batch-mates nudge its vector (fp32: 1.0).
    assert float(alone @ docs[7]) >= 0.98
    assert onnx_embeddings.embed_documents([]) == []


def test_close_to_torch_fp32(
    onnx_embeddings: OnnxMiniLMEmbeddings, embeddings: LocalMiniLMEmbeddings, product_texts: list[str]
) -> None:
    """Cosine to the torch fp32 model's vectors of the same texts stays at the measured level."""
    assert onnx_embeddings.model_name == "all-MiniLM-L6-v2-onnx-int8@64" != embeddings.model_name
    ours = np.array(onnx_embeddings.embed_documents(product_texts))
    theirs = np.array(embeddings.embed_documents(product_texts))
    cos = (ours * theirs).sum(axis=1)
    assert cos.mean() >= MEAN_COS_FLOOR and cos.min() >= MIN_COS_FLOOR, cos


def test_cache_reused(onnx_embeddings: OnnxMiniLMEmbeddings, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second construction loads the cached graph: file untouched, no export."""
    before = onnx_embeddings.path.stat().st_mtime_ns
    monkeypatch.setattr(emb, "_export_onnx_int8", lambda *a: pytest.fail("exported again"))
    again = OnnxMiniLMEmbeddings(cache_dir=cache_dir, max_seq_length=32)
    assert again.path == onnx_embeddings.path and again.path.stat().st_mtime_ns == before
    assert again.model_name.endswith("@32")
    assert [p.name for p in cache_dir.iterdir() if p.suffix == ".onnx"] == [again.path.name]  # no leftovers


def test_concurrent_first_use_exports_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Callers racing on an empty cache: one exports under the lock, the others wait and reuse its file."""
    calls: list[Path] = []
    started = threading.Event()

    def slow_export(model_dir: Path, target: Path) -> None:
        """Stand-in export that holds the lock long enough for the others to queue."""
        calls.append(target)
        started.set()
        threading.Event().wait(0.5)
        target.write_bytes(b"graph")

    monkeypatch.setattr(emb, "_export_onnx_int8", slow_export)
    results: list[Path] = []
    workers = [threading.Thread(target=lambda: results.append(emb.onnx_int8_model(tmp_path, tmp_path / "c")))]
    workers[0].start()
    started.wait(5)
    workers += [
        threading.Thread(target=lambda: results.append(emb.onnx_int8_model(tmp_path, tmp_path / "c"))) for _ in range(2)
    ]
    for w in workers[1:]:
        w.start()
    for w in workers:
        w.join(10)
    assert len(calls) == 1 and len(results) == 3 and len(set(results)) == 1
    assert results[0].read_bytes() == b"graph"


def test_make_embeddings_picks_runtime(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EMBEDDING_RUNTIME selects the model (cache dir from settings); onnx-int8 is the default."""
    monkeypatch.delenv("EMBEDDING_RUNTIME", raising=False)
    assert Settings(_env_file=None).embedding_runtime == "onnx-int8"  # type: ignore[call-arg]
    monkeypatch.setenv("EMBEDDING_RUNTIME", "torch")
    assert isinstance(make_embeddings(Settings(_env_file=None)), LocalMiniLMEmbeddings)  # type: ignore[call-arg]
    monkeypatch.delenv("EMBEDDING_RUNTIME")
    monkeypatch.setenv("MODEL_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("EMBEDDING_MAX_SEQ_LENGTH", "48")
    made = make_embeddings(Settings(_env_file=None))  # type: ignore[call-arg]
    assert isinstance(made, OnnxMiniLMEmbeddings) and made.path.parent == cache_dir
    assert made.model_name == "all-MiniLM-L6-v2-onnx-int8@48"
    assert len(made.embed_query(product_text({"name": "red mug"}))) == 384
