"""TextEncoder runs sentence-transformers: same vectors as the model computed by hand.

The reference below is what the encoder computed before it used sentence-transformers (and what
all-MiniLM-L6-v2's model card prescribes): transformers ``AutoModel``, mean pooling under the
attention mask, L2 normalisation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selectsearch.encode import TextEncoder
from selectsearch.models.encoder import encoder_layout

TEXTS = [
    "vitamin d deficiency and bone fractures in the elderly",
    "a",
    "Mutations in BRCA1 raise the risk of breast cancer; screening starts earlier for carriers.",
    "The quick brown fox " * 40,  # longer than max_length: truncated
    "ÜNICODE, punctuation!? and    spaces",
]


def reference(model_dir: Path, texts: list[str], max_length: int, *, normalize: bool = True) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    with torch.inference_mode():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
    return pooled.numpy()


def test_packaged_model_agrees_with_the_hand_computed_reference() -> None:
    enc = TextEncoder(None, max_length=32, batch_size=2)  # batches of 2: padding differs from the reference's
    ours = enc.encode(TEXTS)
    ref = reference(encoder_layout(None).transformer, TEXTS, 32)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    assert np.abs(ours - ref).max() < 1e-6
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def test_plain_transformers_folder_is_mean_pooled_and_normalised(tiny_model: Path) -> None:
    ours = TextEncoder(str(tiny_model), max_length=16).encode(TEXTS)
    assert np.abs(ours - reference(tiny_model, TEXTS, 16)).max() < 1e-6


def test_bf16_runs_in_bfloat16_and_stays_close() -> None:
    fp32 = TextEncoder(None, max_length=32).encode(TEXTS)
    bf16 = TextEncoder(None, max_length=32, precision="bf16").encode(TEXTS)
    assert bf16.dtype == np.float32
    assert not np.array_equal(fp32, bf16)  # bf16 really ran
    assert ((fp32 * bf16).sum(1)).min() > 0.99


def test_empty_input_and_no_prompt() -> None:
    enc = TextEncoder(None, max_length=32)
    assert enc.encode([]).shape == (0, 384)
    assert enc.sentence_transformer.default_prompt_name is None


@pytest.mark.parametrize("max_length", [8, 64])
def test_max_length_truncates(max_length: int) -> None:
    long = ["word " * 100]
    enc = TextEncoder(None, max_length=max_length)
    assert np.abs(enc.encode(long) - reference(encoder_layout(None).transformer, long, max_length)).max() < 1e-6
