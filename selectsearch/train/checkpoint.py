"""Checkpoints: a folder written whole or not at all, loaded as tensors only.

A checkpoint folder holds a torch file of tensors and plain containers (weights, optimiser and
scheduler states, the torch generator state, the best weights so far) and a JSON file (the
:class:`~selectsearch.train.callbacks.TrainState` fields at the top level, plus the method's own
state). It is built in ``<folder>.partial`` and swapped in, so a crash keeps the previous one.
Loading uses ``torch.load(weights_only=True)``: a checkpoint never runs code.

File names are the method's (MICO has always written ``checkpoint.pt`` + ``state.json``, the
multi-task trainer ``state.pt`` + ``trainer_state.json``), so older checkpoints keep resuming.
"""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selectsearch.errors import ModelError

__all__ = ["FORMAT", "FORMAT_VERSION", "CheckpointFiles", "list_checkpoints", "prune_checkpoints", "read_checkpoint",
           "write_checkpoint"]

FORMAT = "selectsearch-checkpoint"
FORMAT_VERSION = 2


@dataclass(frozen=True)
class CheckpointFiles:
    """Names of the two files of a checkpoint folder."""

    tensors: str = "checkpoint.pt"
    state: str = "trainer_state.json"


def write_checkpoint(folder: Path, tensors: dict[str, Any], state: dict[str, Any], files: CheckpointFiles) -> Path:
    """Write ``folder`` (built as ``<folder>.partial``, then swapped in)."""
    import torch

    from selectsearch.atomic import replace_dir

    partial = folder.with_name(folder.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        torch.save(tensors, partial / files.tensors)
        body = {**state, "format": FORMAT, "format_version": FORMAT_VERSION}
        (partial / files.state).write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
        replace_dir(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return folder


def read_checkpoint(folder: Path, files: CheckpointFiles) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(tensors, state)`` of a folder written by :func:`write_checkpoint`.

    Raises:
        ModelError: no checkpoint there, a damaged one, one that holds more than tensors, or one
            of another format (the message says to start over).
    """
    import torch

    state_path = folder / files.state
    if not state_path.exists():
        raise ModelError(f"{folder} is not a checkpoint (no {files.state})")
    try:  # tensors and plain containers only: a checkpoint never runs code when it is loaded
        tensors = torch.load(folder / files.tensors, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise ModelError(f"{folder / files.tensors} cannot be loaded as tensors only ({reason}); it is damaged or "
                         "not a selectsearch checkpoint — delete that folder, or rerun with --overwrite "
                         "instead of --resume") from None
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelError(f"{state_path} is not valid JSON ({exc}); delete that checkpoint folder") from None
    if not isinstance(tensors, dict) or not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ModelError(f"{folder} holds a checkpoint of an older selectsearch or of another program; "
                         "delete that folder, or rerun with --overwrite instead of --resume")
    if int(state.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(f"{folder} was written by a newer selectsearch (checkpoint format version "
                         f"{state['format_version']}); upgrade selectsearch")
    return tensors, state


def list_checkpoints(root: Path, files: CheckpointFiles) -> list[Path]:
    """``root/checkpoint-*`` folders that hold a checkpoint, oldest first."""
    return sorted(p for p in root.glob("checkpoint-*") if (p / files.state).exists())


def prune_checkpoints(root: Path, files: CheckpointFiles, keep: int) -> None:
    """Delete all but the ``keep`` newest ``root/checkpoint-*`` folders."""
    found = list_checkpoints(root, files)
    for old in found[: max(0, len(found) - keep)]:
        shutil.rmtree(old)
