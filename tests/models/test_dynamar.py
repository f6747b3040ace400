"""DynaMaR parts: pool building, prompt batches, the mask-token head."""

from __future__ import annotations

import random

import pytest
import torch

from selectsearch.models.dynamar import MaskTokenModel, PromptBatcher, build_pool
from selectsearch.models.encoder import tiny_encoder
from selectsearch.prompting import TemplateError


def test_build_pool_default_and_custom() -> None:
    pool = build_pool(("text",), 4)
    assert len(pool) == 4 and pool == build_pool(("text",), 4)
    custom = build_pool(
        ("query", "doc"), 2, ["{query} [SEP] {doc} {mask}", "{mask} {doc} {query}"], variants=False
    )
    assert [t.source for t in custom] == ["{query} [ SEP ] {doc} {mask}", "{mask} {doc} {query}"]
    with pytest.raises(TemplateError):
        build_pool(("text",), 2, ["{text_a} {mask} {text_b}"])


def test_prompt_batches_point_at_the_mask() -> None:
    tok, enc = tiny_encoder()
    pool = build_pool(("text_a", "text_b"), 4)
    b = PromptBatcher(tok, pool, ("text_a", "text_b"), 24)
    rows = [("a short one", "another"), (" ".join(["long"] * 80), "b")]
    for batch in (b.batch(rows, view=2), b.batch(rows, rng=random.Random(0))):
        ids, pos = batch["input_ids"], batch["mask_positions"]
        assert ids.shape[1] <= 24
        assert (ids[torch.arange(2), pos] == tok.mask_token_id).all()
        assert batch["attention_mask"][1].sum() == 24
    with pytest.raises(ValueError):
        b.batch(rows)
    model = MaskTokenModel(enc, 3)
    out = model(**b.batch(rows, view=0))
    assert out.shape == (2, 3)


def test_template_too_long_fails_early() -> None:
    tok, _ = tiny_encoder()
    pool = build_pool(("text",), 1, ["{text} " + "word " * 20 + "{mask}"], variants=False)
    with pytest.raises(TemplateError):
        PromptBatcher(tok, pool, ("text",), 16)
