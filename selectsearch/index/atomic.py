"""Folders that appear complete or not at all: build in ``<name>.partial``, then rename."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["building", "replace_dir"]


def replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, replacing an existing ``dst`` (old one moved aside, then removed)."""
    if dst.exists():
        trash = dst.with_name(f"{dst.name}.old-{os.getpid()}")
        os.replace(dst, trash)
        os.replace(src, dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dst)


@contextmanager
def building(final: Path) -> Iterator[Path]:
    """Yield an empty ``<final>.partial`` folder; publish it as ``final`` when the block succeeds.

    On any error (or Ctrl-C) the partial folder is removed and ``final`` is left as it was.
    """
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    replace_dir(partial, final)
