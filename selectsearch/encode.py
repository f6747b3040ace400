"""Text encoders and the on-disk embedding cache.

:class:`TextEncoder` embeds texts with a local transformers model (default: the packaged
all-MiniLM-L6-v2, mean pooling, L2-normalised — how that model was trained). Embeddings of a
corpus are cached as a memory-mapped float32 matrix with a JSON sidecar recording the model
name, dimension and the corpus fingerprint, so a second build of the same corpus (another shard
count, another partitioner) re-uses them; a cache that does not match is never used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.errors import ModelError
from selectsearch.models.encoder import DEFAULT_ENCODER

__all__ = ["EmbeddingCache", "TextEncoder", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$SELECTSEARCH_CACHE`` or ``~/.cache/selectsearch``."""
    return Path(os.environ.get("SELECTSEARCH_CACHE", Path.home() / ".cache" / "selectsearch"))


class TextEncoder:
    """Batched sentence embeddings from a local transformers encoder.

    Args:
        model: ``None``/``"all-MiniLM-L6-v2"`` for the packaged model, or a local folder.
        max_length: tokens per text (longer texts are truncated).
        batch_size: texts per forward pass.
        threads: torch intra-op threads (``None``: torch's default).

    Example:
        >>> enc = TextEncoder()  # doctest: +SKIP
        >>> enc.encode(["vitamin d"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, *, max_length: int = 256,
                 batch_size: int = 64, threads: int | None = None) -> None:
        import torch

        from selectsearch.models.encoder import load_encoder

        if threads:
            torch.set_num_threads(threads)
        self.name = DEFAULT_ENCODER if model is None else str(model)
        self.tokenizer, self.model = load_encoder(model)
        self.model.eval()
        self.max_length = max_length
        self.batch_size = batch_size
        self.dim = int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """``(len(texts), dim)`` float32, L2-normalised rows."""
        import torch

        from selectsearch.models.encoder import mean_pool

        out = np.empty((len(texts), self.dim), np.float32)
        starts = range(0, len(texts), self.batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="encode", unit="batch")
        with torch.inference_mode():
            for start in starts:
                batch = list(texts[start:start + self.batch_size])
                enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                                     return_tensors="pt")
                hidden = self.model(**enc).last_hidden_state
                pooled = torch.nn.functional.normalize(mean_pool(hidden, enc["attention_mask"]), dim=-1)
                out[start:start + len(batch)] = pooled.numpy()
        return out


class EmbeddingCache:
    """A float32 ``(n, dim)`` memmap at ``<folder>/embeddings.f32`` plus ``meta.json``.

    Written to a temporary name and renamed when complete: a crash never leaves a cache that
    looks complete.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @property
    def meta_path(self) -> Path:
        return self.folder / "meta.json"

    def matches(self, *, model: str, fingerprint: str, n: int) -> bool:
        """Whether a complete cache for this model and corpus exists."""
        if not self.meta_path.exists():
            return False
        meta = json.loads(self.meta_path.read_text())
        return bool(meta.get("model") == model and meta.get("fingerprint") == fingerprint and meta.get("n") == n)

    def load(self) -> np.ndarray:
        """The cached matrix, memory-mapped read-only."""
        meta = json.loads(self.meta_path.read_text())
        return np.memmap(self.folder / "embeddings.f32", dtype=np.float32, mode="r",
                         shape=(int(meta["n"]), int(meta["dim"])))

    def build(self, encoder: TextEncoder, texts: Iterable[str], *, n: int, fingerprint: str,
              chunk: int = 2048, progress: bool = False) -> np.ndarray:
        """Encode ``texts`` (streamed, ``n`` of them) into the cache and return the memmap."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / "embeddings.f32.partial"
        matrix = np.memmap(tmp, dtype=np.float32, mode="w+", shape=(n, encoder.dim))
        bar: Any = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n, desc="encode", unit="doc")
        row = 0
        buffer: list[str] = []
        for text in texts:
            buffer.append(text)
            if len(buffer) == chunk:
                matrix[row:row + len(buffer)] = encoder.encode(buffer)
                row += len(buffer)
                if bar is not None:
                    bar.update(len(buffer))
                buffer = []
        if buffer:
            matrix[row:row + len(buffer)] = encoder.encode(buffer)
            row += len(buffer)
            if bar is not None:
                bar.update(len(buffer))
        if bar is not None:
            bar.close()
        if row != n:
            raise ModelError(f"expected {n} texts to encode, got {row}")
        matrix.flush()
        del matrix
        os.replace(tmp, self.folder / "embeddings.f32")
        self.meta_path.write_text(json.dumps({"model": encoder.name, "fingerprint": fingerprint, "n": n,
                                              "dim": encoder.dim, "max_length": encoder.max_length}))
        return self.load()
