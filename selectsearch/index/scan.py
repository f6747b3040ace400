"""Pass 1 of a build: read the corpus once to count, check ids, fingerprint and sample it.

Also what a later verb needs to check it was given the same corpus an index was built from
(``--add-backend faiss`` compares fingerprints).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

from selectsearch.data.ids import DuplicateDocIdError, corpus_fingerprint
from selectsearch.errors import DataFormatError, SelectSearchError
from selectsearch.partition.base import CorpusScan, Reservoir, reservoir_sample
from selectsearch.types import Document

__all__ = ["IdChecker", "KeptCorpus", "progress_bar", "scan_corpus"]

log = logging.getLogger(__name__)


class KeptCorpus:
    """Re-iterable view of the corpus without the dropped duplicate positions."""

    def __init__(self, corpus: Any, drop: set[int]) -> None:
        self._corpus = corpus
        self._drop = drop

    def __iter__(self) -> Iterator[Document]:
        for raw_position, (doc, _, _) in enumerate(self._corpus.iter_with_positions()):
            if raw_position not in self._drop:
                yield doc


def progress_bar(total: int | None, desc: str, unit: str, progress: bool) -> Any:
    """A tqdm bar of a build pass (hidden unless ``progress``)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not progress, dynamic_ncols=True)


class IdChecker:
    """Duplicate-id check and fingerprint, fed one document at a time (one dict entry per id)."""

    def __init__(self, dedupe: str, *, require_text: bool = False) -> None:
        self.dedupe = dedupe
        self.require_text = require_text
        self.first_seen: dict[str, tuple[int, str, int | None]] = {}
        self.drop: set[int] = set()
        self._hash = hashlib.sha256()
        self.kept = 0

    def keep(self, raw_position: int, doc: Document, where: str, line: int | None) -> bool:
        """Whether to keep this document (raises on a duplicate unless deduplicating).

        With ``require_text`` (a Lucene build) a kept document without text (empty or only
        whitespace) is an error naming its file and line: Lucene would skip it, and the shard
        would not match its document store.
        """
        previous = self.first_seen.get(doc.doc_id)
        if previous is not None and self.dedupe == "first":
            self.drop.add(raw_position)
            return False
        if self.require_text and not doc.contents.strip():
            raise DataFormatError(where, line, f"document {doc.doc_id!r} has no text (empty or only whitespace); "
                                               "Lucene cannot index it — remove it from the corpus or give it text")
        if previous is not None:
            if self.dedupe == "last":  # the earlier copy goes; known only after the whole pass
                self.drop.add(previous[0])
                self.first_seen[doc.doc_id] = (raw_position, where, line)
                return True
            raise DuplicateDocIdError(doc.doc_id, (previous[1], previous[2]), (where, line))
        self.first_seen[doc.doc_id] = (raw_position, where, line)
        if self.kept:
            self._hash.update(b"\n")
        self._hash.update(doc.doc_id.encode("utf-8"))
        self.kept += 1
        return True

    @property
    def fingerprint(self) -> str:
        """:func:`corpus_fingerprint` of the kept ids (exact unless ``dedupe == "last"`` dropped some)."""
        return self._hash.hexdigest()


def scan_corpus(corpus: Any, *, dedupe: str, sample_size: int, seed: int, progress: bool,
                require_text: bool = False) -> CorpusScan:
    """Pass 1: count, check ids, fingerprint and sample, in ONE read of the corpus.

    Only ``dedupe="last"`` with actual repeats needs a second read (the kept copies are known
    only at the end). ``require_text``: a document without text is an error (Lucene builds).
    """
    checker = IdChecker(dedupe, require_text=require_text)
    reservoir = Reservoir(sample_size, seed)
    with progress_bar(None, "scan", "doc", progress) as bar:
        for raw_position, (doc, where, line) in enumerate(corpus.iter_with_positions()):
            if checker.keep(raw_position, doc, where, line):
                reservoir.offer(doc)
            bar.update(1)
    drop = checker.drop
    kept = KeptCorpus(corpus, drop)
    n_docs = len(checker.first_seen)
    if n_docs == 0:
        raise SelectSearchError(f"the corpus {corpus!r} has no documents; check the path and file format")
    if dedupe == "last" and drop:
        fingerprint = corpus_fingerprint(d.doc_id for d in kept)
        docs, positions = reservoir_sample(kept, sample_size, seed) if sample_size else ([], [])
    else:
        fingerprint = checker.fingerprint
        docs, positions = reservoir.result()
    if drop:
        log.warning("dropped %d repeated doc ids (--dedupe %s)", len(drop), dedupe)
    return CorpusScan(n_docs=n_docs, fingerprint=fingerprint, sample=docs, sample_positions=positions,
                      corpus=kept, extra={"duplicates_dropped": len(drop)})
