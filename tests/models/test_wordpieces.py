"""ASCII word pieces from a per-word memory: the tokenizer's own ids, for any ASCII text."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selectsearch.models.encoder import tiny_encoder
from selectsearch.models.wordpieces import AsciiWordPieces


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    """The packaged all-MiniLM-L6-v2 tokenizer (a ``tokenizers.Tokenizer``, without padding or truncation)."""
    from tokenizers import Tokenizer

    hf_tokenizer, _ = tiny_encoder(hidden_size=32, layers=1, heads=2, seed=0)
    out = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
    out.no_padding()
    out.no_truncation()
    return out


@pytest.fixture(scope="module")
def pieces(tokenizer: Any) -> AsciiWordPieces:
    fast = AsciiWordPieces.for_tokenizer(tokenizer)
    assert fast is not None, "all-MiniLM-L6-v2's tokenizer is BERT's pipeline"
    return fast


def _reference(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


EDGE_CASES = ["", "   ", "Rocket ORBIT launch!", "0-dimensional biomaterials (p<0.05), 12.5%", "don't stop_me now",
              "tab\tnew\nline\rret", "ctrl\x00\x01\x07\x0b\x0c\x1f\x7fchars", "a" * 150 + " b", "x" * 99,
              "[MASK] is added", "[mask] is not", "##sub ##words", "café", "e.g. U.S.A. vs. u.k.",
              "~!@#$%^&*()_+{}|:<>?"]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_ids_are_the_tokenizers_on_edge_cases(pieces: AsciiWordPieces, tokenizer: Any, text: str) -> None:
    ids = pieces.ids(text)
    if not text.isascii() or "[MASK]" in text:
        assert ids is None  # left to the tokenizer
    else:
        assert ids == _reference(tokenizer, text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_ids_are_the_tokenizers_on_any_ascii_text(pieces: AsciiWordPieces, tokenizer: Any, text: str) -> None:
    ids = pieces.ids(text)
    assert ids is None or ids == _reference(tokenizer, text)
    if not any(t in text for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")):
        assert ids is not None


def test_other_pipelines_get_no_fast_path(tokenizer: Any) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    other = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    other.pre_tokenizer = pre_tokenizers.Whitespace()
    assert AsciiWordPieces.for_tokenizer(other) is None
