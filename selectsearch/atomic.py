"""Folders that appear complete or not at all: build in ``<name>.partial``, then rename.

Also what keeps a killed build from leaving things behind: :func:`recover_replaced` repairs a
swap that was killed half-way (``<name>.old-<pid>``), and :func:`interrupt_on_sigterm` makes
``SIGTERM`` clean up like Ctrl-C.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["Terminated", "building", "interrupt_on_sigterm", "pid_alive", "recover_replaced", "replace_dir"]

log = logging.getLogger(__name__)


def replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, replacing an existing ``dst`` (old one moved aside, then removed).

    A kill between the two renames or during the removal leaves ``<dst>.old-<pid>``;
    :func:`recover_replaced` puts it back (``dst`` missing) or removes it (``dst`` in place).
    """
    if dst.exists():
        trash = dst.with_name(f"{dst.name}.old-{os.getpid()}")
        os.replace(dst, trash)
        os.replace(src, dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dst)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (``False`` for this process's own pid is never returned)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def recover_replaced(final: Path, is_ours: Callable[[Path], bool]) -> list[str]:
    """Repair what a killed :func:`replace_dir` left next to ``final``; return what was done.

    ``<final>.old-<pid>`` of a process that no longer runs is the folder ``final`` replaced (or
    was replacing). When ``final`` exists the swap completed and the old folder is removed;
    when ``final`` is missing the kill came between the two renames and the old folder is
    restored as ``final`` (nothing a user had is lost). Folders that ``is_ours`` does not
    recognise, or of a process that still runs, are left alone and reported.
    """
    done: list[str] = []
    for old in sorted(final.parent.glob(glob.escape(final.name) + ".old-*")):
        pid_text = old.name[len(final.name) + len(".old-"):]
        if not pid_text.isdigit() or not old.is_dir():
            continue
        if int(pid_text) != os.getpid() and pid_alive(int(pid_text)):
            done.append(f"left {old} alone: process {pid_text} that made it is still running")
        elif not is_ours(old):
            done.append(f"left {old} alone: it does not look like what selectsearch writes there; "
                        "move it away or delete it")
        elif final.exists() or final.is_symlink():
            shutil.rmtree(old)
            done.append(f"removed {old}, left by a replacement of {final} that was killed")
        else:
            os.replace(old, final)
            done.append(f"restored {final} from {old}: replacing it was killed half-way")
    for message in done:
        log.warning("%s", message)
    return done


class Terminated(KeyboardInterrupt):
    """``SIGTERM`` received: raised in the main thread like Ctrl-C, so cleanup code runs."""


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Within the block, ``SIGTERM`` raises :class:`Terminated` (a ``KeyboardInterrupt``).

    Python's default for ``SIGTERM`` is to die at once, skipping ``finally`` blocks, so a
    terminated build would leave its ``.partial`` folder and its workers. Only the first
    ``SIGTERM`` raises; more arriving while cleanup runs are ignored. Outside the main thread
    (where signal handlers cannot be set) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let cleanup finish
        raise Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
