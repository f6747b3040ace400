"""A shared transformer encoder with one head per task, served from one encoder pass.

:class:`SharedEncoder` mean-pools a Hugging Face encoder. With ``frozen_layers=k`` the
embeddings and the bottom ``k`` layers are frozen and run in inference mode; their outputs are
deterministic, so they are computed once per distinct text and kept in memory (the *feature
cache*), and only the top layers run in each training step. ``k=0`` fine-tunes everything.

:class:`MultiTaskModel` puts one :class:`TaskHead` per task on top, computes all heads from one
encoder pass (:meth:`MultiTaskModel.predict`) and saves/loads itself as a self-describing folder.

Example:
    >>> from selectsearch.models.encoder import load_encoder  # doctest: +SKIP
    >>> tok, enc = load_encoder(None)  # doctest: +SKIP
    >>> heads = [HeadSpec("trec-coarse", "classification", 6), HeadSpec("toys-l1", "classification", 32)]
    >>> model = MultiTaskModel(SharedEncoder(tok, enc, frozen_layers=4), heads)  # doctest: +SKIP
    >>> out = model.predict(["how tall is the eiffel tower ?"])  # doctest: +SKIP
    >>> out["trec-coarse"].shape  # (1, 6) class probabilities  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from selectsearch.errors import ModelError
from selectsearch.models.encoder import mean_pool
from selectsearch.models.folder import model_folder, read_model_manifest, write_model_manifest

__all__ = ["FORMAT_VERSION", "HeadSpec", "MultiTaskModel", "Pair", "SharedEncoder", "TaskHead"]

#: A model input: text and optional second text (sentence pairs).
Pair = tuple[str, str | None]
FORMAT = "selectsearch-mtl-model"
FORMAT_VERSION = 1
_MANIFEST = "mtl_model.json"


def _as_pairs(texts: Iterable[str | Pair]) -> list[Pair]:
    out: list[Pair] = []
    for t in texts:
        if isinstance(t, str):
            out.append((t, None))
        else:
            out.append((t[0], t[1]))
    return out


@dataclass(frozen=True)
class HeadSpec:
    """What one head predicts: ``kind`` is ``"classification"`` or ``"regression"``."""

    name: str
    kind: str
    num_labels: int
    label_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("classification", "regression"):
            raise ModelError(f"head {self.name!r}: kind must be classification or regression")
        if self.kind == "regression" and self.num_labels != 1:
            raise ModelError(f"head {self.name!r}: a regression head has num_labels=1")
        if self.kind == "classification" and self.num_labels < 2:
            raise ModelError(f"head {self.name!r}: a classifier needs at least 2 labels")


class TaskHead(nn.Module):
    """Dropout + linear layer on the pooled sentence vector. Output ``[N, C]`` or ``[N]``."""

    def __init__(self, hidden_size: int, spec: HeadSpec, dropout: float = 0.1) -> None:
        super().__init__()
        self.spec = spec
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, spec.num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, C]`` (classification) or predictions ``[N]`` (regression)."""
        out = self.linear(self.dropout(pooled))
        return out.squeeze(-1) if self.spec.kind == "regression" else out


class SharedEncoder(nn.Module):
    """Mean-pooled transformer encoder with optionally frozen, cached bottom layers.

    Args:
        tokenizer: the encoder's tokenizer.
        encoder: a BERT-style ``AutoModel`` (``embeddings`` + ``encoder.layer``).
        frozen_layers: number of bottom transformer layers to freeze (with the embeddings).
        max_length: maximum tokens per input (pairs truncated together).
    """

    def __init__(self, tokenizer: Any, encoder: Any, *, frozen_layers: int = 0,
                 max_length: int = 64) -> None:
        super().__init__()
        layers = encoder.encoder.layer
        if not 0 <= frozen_layers <= len(layers):
            raise ModelError(f"frozen_layers must be in 0..{len(layers)}, got {frozen_layers}")
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.frozen_layers = frozen_layers
        self.max_length = max_length
        self.hidden_size = int(encoder.config.hidden_size)
        self._tokens: dict[Pair, tuple[list[int], list[int]]] = {}
        #: Outputs of the frozen bottom, one ``[len, H]`` float16 tensor per distinct input.
        self.feature_cache: dict[Pair, torch.Tensor] = {}
        if frozen_layers > 0:
            for p in encoder.embeddings.parameters():
                p.requires_grad_(False)
            for layer in layers[:frozen_layers]:
                for p in layer.parameters():
                    p.requires_grad_(False)
        if getattr(encoder, "pooler", None) is not None:
            for p in encoder.pooler.parameters():  # unused by mean pooling
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> SharedEncoder:
        """Set training mode; frozen bottom layers always stay in inference mode."""
        super().train(mode)
        if self.frozen_layers > 0:
            self.encoder.embeddings.eval()
            for layer in self.encoder.encoder.layer[: self.frozen_layers]:
                layer.eval()
        return self

    def trainable_layer_parameters(self) -> list[nn.Parameter]:
        """The last shared weight matrix: the output projection of the top layer (GradNorm's W)."""
        top = self.encoder.encoder.layer[-1]
        dense = getattr(getattr(top, "output", None), "dense", None)
        params = list(dense.parameters()) if dense is not None else list(top.parameters())
        return [p for p in params if p.requires_grad]

    def _tokenize(self, pairs: Sequence[Pair]) -> list[tuple[list[int], list[int]]]:
        missing = [p for p in dict.fromkeys(pairs) if p not in self._tokens]
        singles = [p for p in missing if p[1] is None]
        doubles = [p for p in missing if p[1] is not None]
        if singles:
            enc = self.tokenizer([p[0] for p in singles], truncation=True,
                                 max_length=self.max_length, return_token_type_ids=True)
            for p, ids, tt in zip(singles, enc["input_ids"], enc["token_type_ids"], strict=True):
                self._tokens[p] = (ids, tt)
        if doubles:
            enc = self.tokenizer([p[0] for p in doubles], [str(p[1]) for p in doubles],
                                 truncation=True, max_length=self.max_length,
                                 return_token_type_ids=True)
            for p, ids, tt in zip(doubles, enc["input_ids"], enc["token_type_ids"], strict=True):
                self._tokens[p] = (ids, tt)
        return [self._tokens[p] for p in pairs]

    def _padded(self, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        toks = self._tokenize(pairs)
        width = max(len(ids) for ids, _ in toks)
        ids_t = torch.zeros(len(toks), width, dtype=torch.long)
        tt_t = torch.zeros(len(toks), width, dtype=torch.long)
        mask = torch.zeros(len(toks), width, dtype=torch.long)
        for i, (ids, tt) in enumerate(toks):
            ids_t[i, : len(ids)] = torch.tensor(ids)
            tt_t[i, : len(tt)] = torch.tensor(tt)
            mask[i, : len(ids)] = 1
        return ids_t, tt_t, mask

    @staticmethod
    def _extended(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

    def _run_layers(self, hidden: torch.Tensor, mask: torch.Tensor, start: int,
                    stop: int) -> torch.Tensor:
        ext = self._extended(mask, hidden.dtype)
        for layer in self.encoder.encoder.layer[start:stop]:
            out = layer(hidden, attention_mask=ext)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    @torch.no_grad()
    def _fill_cache(self, pairs: Sequence[Pair], batch_size: int = 64) -> None:
        missing = [p for p in dict.fromkeys(pairs) if p not in self.feature_cache]
        self.encoder.embeddings.eval()  # frozen = inference mode, whatever the module's mode
        for layer in self.encoder.encoder.layer[: self.frozen_layers]:
            layer.eval()
        # Sort by length so batches pad little; results do not depend on the batching.
        missing.sort(key=lambda p: len(self._tokenize([p])[0][0]))
        for i in range(0, len(missing), batch_size):
            chunk = missing[i : i + batch_size]
            ids, tt, mask = self._padded(chunk)
            hidden = self.encoder.embeddings(input_ids=ids, token_type_ids=tt)
            hidden = self._run_layers(hidden, mask, 0, self.frozen_layers)
            for j, p in enumerate(chunk):
                self.feature_cache[p] = hidden[j, : int(mask[j].sum())].to(torch.float16).clone()

    def precompute(self, pairs: Iterable[Pair], batch_size: int = 64) -> None:
        """Fill the feature cache for ``pairs`` (no-op when nothing is frozen)."""
        if self.frozen_layers > 0:
            self._fill_cache(list(pairs), batch_size)

    def forward(self, pairs: Sequence[Pair]) -> torch.Tensor:
        """Pooled sentence vectors ``[N, H]`` for ``pairs``."""
        if not pairs:
            raise ModelError("SharedEncoder got an empty batch")
        if self.frozen_layers == 0:
            ids, tt, mask = self._padded(pairs)
            out = self.encoder(input_ids=ids, token_type_ids=tt, attention_mask=mask)
            return mean_pool(out.last_hidden_state, mask)
        self._fill_cache(pairs)
        feats = [self.feature_cache[p] for p in pairs]
        width = max(f.shape[0] for f in feats)
        hidden = torch.zeros(len(feats), width, self.hidden_size)
        mask = torch.zeros(len(feats), width, dtype=torch.long)
        for i, f in enumerate(feats):
            hidden[i, : f.shape[0]] = f.float()
            mask[i, : f.shape[0]] = 1
        hidden = self._run_layers(hidden, mask, self.frozen_layers, len(self.encoder.encoder.layer))
        return mean_pool(hidden, mask)


class MultiTaskModel(nn.Module):
    """One :class:`SharedEncoder` and one :class:`TaskHead` per task.

    Args:
        shared: the shared encoder.
        heads: one spec per task; names must be unique.
        dropout: dropout before each head's linear layer.
    """

    def __init__(self, shared: SharedEncoder, heads: Sequence[HeadSpec], *,
                 dropout: float = 0.1) -> None:
        super().__init__()
        names = [h.name for h in heads]
        if len(set(names)) != len(names) or not names:
            raise ModelError(f"head names must be unique and non-empty, got {names}")
        self.shared = shared
        self.specs = {h.name: h for h in heads}
        self.heads = nn.ModuleDict({h.name: TaskHead(shared.hidden_size, h, dropout) for h in heads})

    @property
    def task_names(self) -> list[str]:
        """Task names in declaration order."""
        return list(self.specs)

    def forward(self, pairs: Sequence[Pair], tasks: Sequence[str] | None = None
                ) -> dict[str, torch.Tensor]:
        """Raw head outputs (logits / regression values) of ``tasks`` (default: all)."""
        pooled = self.shared(pairs)
        return {t: self.heads[t](pooled) for t in (tasks or self.task_names)}

    def shared_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the shared encoder."""
        return [p for p in self.shared.parameters() if p.requires_grad]

    def head_parameters(self, task: str) -> list[nn.Parameter]:
        """Parameters of one task's head."""
        return list(self.heads[task].parameters())

    @torch.no_grad()
    def predict(self, texts: Iterable[str | Pair], *, batch_size: int = 128,
                tasks: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """All heads' outputs from ONE encoder pass per batch.

        Returns:
            ``{task: array}``: class probabilities ``[N, C]`` or regression values ``[N]``.
        """
        pairs = _as_pairs(texts)
        names = list(tasks or self.task_names)
        was_training = self.training
        self.eval()
        chunks: dict[str, list[np.ndarray]] = {t: [] for t in names}
        try:
            for i in range(0, len(pairs), batch_size):
                out = self(pairs[i : i + batch_size], names)
                for t in names:
                    v = out[t]
                    if self.specs[t].kind == "classification":
                        v = torch.softmax(v, dim=-1)
                    chunks[t].append(v.float().numpy())
        finally:
            self.train(was_training)
        return {t: (np.concatenate(c) if c else np.zeros((0,))) for t, c in chunks.items()}

    def save(self, folder: str | os.PathLike[str], *, extra: dict[str, Any] | None = None) -> Path:
        """Write the model to ``folder`` atomically (``folder.partial`` then rename).

        The manifest ``mtl_model.json`` is written last; ``extra`` is recorded in it.
        """
        with model_folder(folder, overwrite=True) as partial:
            self.shared.encoder.save_pretrained(str(partial / "encoder"))
            self.shared.tokenizer.save_pretrained(str(partial / "encoder"))
            torch.save({t: h.state_dict() for t, h in self.heads.items()}, partial / "heads.pt")
            manifest = {
                "heads": [asdict(s) for s in self.specs.values()],
                "frozen_layers": self.shared.frozen_layers,
                "max_length": self.shared.max_length,
                **(extra or {}),
            }
            write_model_manifest(partial, manifest, format=FORMAT, version=FORMAT_VERSION,
                                 command=(extra or {}).get("command"), name=_MANIFEST)
        return Path(folder)

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> MultiTaskModel:
        """Load a folder written by :meth:`save`.

        Raises:
            ModelError: no manifest, or a newer format version.
        """
        from selectsearch.models.encoder import load_encoder

        path = Path(folder)
        manifest = read_model_manifest(path, format=FORMAT, version=FORMAT_VERSION, what="multi-task model",
                                       hint="train one with `selectsearch train-mtl`", name=_MANIFEST)
        tokenizer, encoder = load_encoder(path / "encoder")
        shared = SharedEncoder(tokenizer, encoder, frozen_layers=int(manifest["frozen_layers"]),
                               max_length=int(manifest["max_length"]))
        specs = [HeadSpec(h["name"], h["kind"], int(h["num_labels"]), tuple(h["label_names"]))
                 for h in manifest["heads"]]
        model = cls(shared, specs)
        states = torch.load(path / "heads.pt", map_location="cpu", weights_only=True)
        for t, h in model.heads.items():
            h.load_state_dict(states[t])
        model.eval()
        return model
