"""Filling templates: the mask survives any truncation."""

from __future__ import annotations

from typing import Any

import pytest

from selectsearch.models.encoder import load_tokenizer
from selectsearch.prompting import Template, TemplateError, prepare_template


@pytest.fixture(scope="module")
def tok() -> Any:
    return load_tokenizer(None)


LONG = " ".join(f"word{i}" for i in range(300))


@pytest.mark.parametrize(
    "source",
    [
        "{text} It was {mask} .",
        "{mask} : {text}",
        "{text_a} ? {mask} , {text_b}",
        "{text_a} {text_b} {mask}",
    ],
)
@pytest.mark.parametrize("max_length", [12, 16, 40, 128])
def test_mask_never_truncated(tok: Any, source: str, max_length: int) -> None:
    p = prepare_template(Template.parse(source), tok)
    fields = {"text": LONG, "text_a": LONG, "text_b": "short one"}
    f = p.fill(tok, {s: fields[s] for s in p.template.slots}, max_length)
    assert len(f.input_ids) == max_length
    assert f.input_ids[f.mask_position] == tok.mask_token_id
    assert f.input_ids.count(tok.mask_token_id) == 1
    assert f.input_ids[0] == tok.cls_token_id and f.input_ids[-1] == tok.sep_token_id


def test_short_text_untouched_and_pair_longest_first(tok: Any) -> None:
    p = prepare_template("{text_a} ? {mask} , {text_b}", tok)
    short = p.fill(tok, {"text_a": "good movie", "text_b": "fine film"}, 64)
    plain = tok("good movie ? [MASK] , fine film")["input_ids"]
    assert short.input_ids == plain
    long = p.fill(tok, {"text_a": LONG, "text_b": "fine film"}, 20)
    # the long text is cut, the short one is kept whole
    fine = tok("fine film", add_special_tokens=False)["input_ids"]
    assert len(long.input_ids) == 20
    assert long.input_ids[-1 - len(fine) : -1] == fine


def test_template_longer_than_max_length(tok: Any) -> None:
    p = prepare_template("{text} this template has quite a few words in it {mask} .", tok)
    with pytest.raises(TemplateError):
        p.fill(tok, {"text": "x"}, 8)
    with pytest.raises(TemplateError):
        p.fill(tok, {"other": "x"}, 64)
