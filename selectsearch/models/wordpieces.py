"""BERT word pieces of ASCII text, with each word's pieces looked up once.

A routed query is one short text, and the ``tokenizers`` library spends about 25 us on it (most
of it crossing into Rust and building the ``Encoding``), as much as the rest of the query
encoding. A BERT tokenizer cuts text into words first (clean-up, lower case, split on white
space and punctuation) and then cuts each word into pieces independently of its neighbours, so
the pieces of a text are the concatenation of its words' pieces. For ASCII text the first step
is a short regular expression; the second is asked of the real tokenizer once per distinct word
and remembered. Same ids as the tokenizer (``tests/models/test_wordpieces.py`` compares them on
arbitrary ASCII text), about 5 us per query.

Only for tokenizers that are exactly BERT's pipeline (``BertNormalizer`` with clean-up and lower
casing, ``BertPreTokenizer``, ``WordPiece``: all-MiniLM-L6-v2's and its model2vec tables');
:meth:`AsciiWordPieces.for_tokenizer` returns ``None`` for any other. A text that is not ASCII,
or that contains an added token's text (``[MASK]``, which the tokenizer matches before
normalising), is left to the tokenizer (:meth:`AsciiWordPieces.ids` returns ``None``).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["AsciiWordPieces"]

#: ASCII control characters that BERT's clean-up deletes (tab, newline and carriage return are
#: white space: they separate words)
_DELETED = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127])
#: after clean-up and lower casing, a BERT word of ASCII text is a run of letters and digits, and
#: every other non-space character (ASCII punctuation) is a word of its own
_WORDS = re.compile(r"[a-z0-9]+|[^a-z0-9\s]")
#: distinct words remembered (then the memory starts again: a bound, not an LRU)
MAX_WORDS = 200_000


class AsciiWordPieces:
    """The word pieces of ASCII texts by a BERT ``tokenizers.Tokenizer`` (module docs).

    Args:
        tokenizer: the tokenizer (its truncation and special tokens are not used: :meth:`ids`
            returns every piece, the caller cuts).
        added: the texts of the tokenizer's added tokens.
    """

    def __init__(self, tokenizer: Any, added: list[str]) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._added = [a for a in added if a]
        self._pieces: dict[str, list[int]] = {}

    @classmethod
    def for_tokenizer(cls, tokenizer: Any) -> AsciiWordPieces | None:
        """The fast path for ``tokenizer``, or ``None`` when it is not exactly BERT's pipeline."""
        config = json.loads(tokenizer.to_str())
        normalizer = config.get("normalizer") or {}
        pre_tokenizer = config.get("pre_tokenizer") or {}
        model = config.get("model") or {}
        bert = (normalizer.get("type") == "BertNormalizer" and normalizer.get("clean_text") is True
                and normalizer.get("lowercase") is True and pre_tokenizer.get("type") == "BertPreTokenizer"
                and model.get("type") == "WordPiece")
        if not bert:
            return None
        return cls(tokenizer, [str(t.get("content", "")) for t in config.get("added_tokens") or []])

    def ids(self, text: str) -> list[int] | None:
        """Every piece id of ``text`` (no special tokens, no truncation), or ``None`` when the
        text is not ASCII or contains an added token's text (ask the tokenizer then)."""
        if not text.isascii() or any(a in text for a in self._added):
            return None
        pieces, out = self._pieces, []
        for word in _WORDS.findall(text.translate(_DELETED).lower()):
            known = pieces.get(word)
            if known is None:
                if len(pieces) >= MAX_WORDS:
                    pieces.clear()
                known = pieces[word] = self._tokenizer.encode(word, add_special_tokens=False).ids
            out.extend(known)
        return out
