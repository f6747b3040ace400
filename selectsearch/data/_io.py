"""Low-level input/output shared by the readers: transparent gzip, JSON, atomic writes.

Example:
    >>> from selectsearch.data._io import xopen
    >>> with xopen("corpus.jsonl.gz") as f:  # doctest: +SKIP
    ...     first = next(f)
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from selectsearch.errors import DataFormatError, DataNotFoundError

__all__ = ["atomic_write", "is_gzip", "iter_lines", "json_loads", "sniff", "xopen"]

_GZIP_MAGIC = b"\x1f\x8b"

try:  # optional speed-up; the standard library is the fallback
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None  # type: ignore[assignment]

#: Parse one JSON document (``orjson.loads`` when installed, else ``json.loads``).
json_loads: Callable[[str | bytes], Any] = _orjson.loads if _orjson is not None else json.loads
#: The exception ``json_loads`` raises on malformed input.
JSONDecodeError: type[ValueError] = (
    _orjson.JSONDecodeError if _orjson is not None else json.JSONDecodeError
)


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its name says)."""
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def xopen(path: str | os.PathLike[str]) -> IO[str]:
    """Open a text file for reading as UTF-8, decompressing gzip transparently.

    Args:
        path: a plain or gzip-compressed file (detected from its first bytes).

    Raises:
        DataNotFoundError: the file does not exist.

    Example:
        >>> with xopen("qrels/test.tsv") as f:  # doctest: +SKIP
        ...     header = f.readline()
    """
    p = Path(path)
    if not p.is_file():
        hint = "it is a folder, not a file" if p.is_dir() else "check the path"
        raise DataNotFoundError(
            f"{p}: no such file ({hint}); set SELECTSEARCH_DATA or fix the path"
        )
    if is_gzip(p):
        return gzip.open(p, "rt", encoding="utf-8")
    return open(p, encoding="utf-8")


def iter_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """Yield ``(line_no, line)`` with 1-based line numbers, line endings removed.

    A byte sequence that is not UTF-8 raises :class:`DataFormatError` naming the line.

    Example:
        >>> for line_no, line in iter_lines("queries.tsv"):  # doctest: +SKIP
        ...     print(line_no, line)
    """
    line_no = 0
    reason = ""
    try:
        with xopen(path) as f:
            for line_no, line in enumerate(f, start=1):
                yield line_no, line.rstrip("\r\n")
        return
    except UnicodeDecodeError as e:
        # text files are decoded in chunks, so the error comes before the lines that precede the
        # bad byte in its chunk were read: read those one by one, up to the line that holds it
        reason = e.reason
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataFormatError(
            path, line_no + 1, f"cannot read the file ({e}); it may be truncated — re-download it"
        ) from None
    bad = line_no + 1
    for bad, text in _lines_until_non_utf8(path, after=line_no):
        if text is None:
            break
        yield bad, text.rstrip("\r\n")
    raise DataFormatError(path, bad, f"not valid UTF-8 ({reason}); re-encode the file as UTF-8")


def _lines_until_non_utf8(path: str | os.PathLike[str], *, after: int) -> Iterator[tuple[int, str | None]]:
    """``(line_no, text)`` of the lines after line ``after``, then ``(line_no, None)`` for the first
    line that is not valid UTF-8 (decoded one by one, so the number is exact)."""
    with (gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")) as f:
        for line_no, raw in enumerate(f, start=1):
            if line_no <= after:
                continue
            try:
                yield line_no, raw.decode("utf-8")
            except UnicodeDecodeError:
                yield line_no, None
                return


def sniff(path: str | os.PathLike[str], size: int = 4096) -> str:
    """The first ``size`` characters of the (decompressed) file, without leading whitespace."""
    try:
        with xopen(path) as f:
            return f.read(size).lstrip("\ufeff \t\r\n")
    except (UnicodeDecodeError, EOFError, OSError):
        return ""


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], *, compress: bool | None = None
) -> Iterator[IO[str]]:
    """Write a text file atomically: a temporary file next to it, then ``os.replace``.

    Args:
        path: destination; its parent folder is created when missing.
        compress: gzip the output; default: when the name ends in ``.gz``.

    Example:
        >>> with atomic_write("runs/bm25.run") as f:  # doctest: +SKIP
        ...     f.write("1 Q0 d1 1 3.5 bm25\\n")
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if compress is None:
        compress = dest.suffix == ".gz"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            binary: Any = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if compress else raw
            with io.TextIOWrapper(binary, encoding="utf-8", newline="\n") as text:
                yield text
                text.flush()
                if compress:
                    binary.close()
                raw.flush()
                os.fsync(raw.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
