"""Encoder folders: sentence-transformers and transformers layouts, clear errors for missing files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from selectsearch.encode import PRECISION_ENV, TextEncoder, corpus_cache, corpus_embeddings, encoder_precision
from selectsearch.errors import ModelError
from selectsearch.models.encoder import encoder_layout


def test_packaged_model_is_a_sentence_transformers_folder() -> None:
    layout = encoder_layout(None)
    assert (layout.kind, layout.pooling, layout.normalize) == ("sentence-transformers", "mean", True)
    assert layout.transformer == layout.root


@pytest.mark.parametrize("remove, named", [("model.safetensors", "model.safetensors or pytorch_model.bin"),
                                           ("config.json", "config.json")])
def test_missing_files_are_named(tiny_model: Path, tmp_path: Path, remove: str, named: str) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(tiny_model, folder)
    (folder / remove).unlink()
    with pytest.raises(ModelError, match=f"{folder}.*missing {named}"):
        TextEncoder(str(folder))


def test_missing_tokenizer_and_missing_folder(tiny_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model / name, folder / name)
    with pytest.raises(ModelError, match=r"missing tokenizer\.json/vocab\.txt"):
        encoder_layout(folder)
    with pytest.raises(ModelError, match=r"does not exist.*never downloaded"):
        encoder_layout(tmp_path / "nowhere")


def _st_folder(tiny_model: Path, folder: Path, pooling: str, normalize: bool) -> Path:
    """A sentence-transformers layout with the transformer in 0_Transformer/."""
    shutil.copytree(tiny_model, folder / "0_Transformer")
    modules = [{"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32, "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": pooling == "max"}))
    return folder


def test_sentence_transformers_layout_pooling_and_normalisation(tiny_model: Path, tmp_path: Path) -> None:
    import torch

    folder = _st_folder(tiny_model, tmp_path / "st-cls", "cls", normalize=False)
    layout = encoder_layout(folder)
    assert (layout.transformer, layout.pooling, layout.normalize) == (folder / "0_Transformer", "cls", False)
    enc = TextEncoder(str(folder), max_length=16)
    texts = ["rocket orbit", "a much longer text about butter and flour in the oven"]
    vectors = enc.encode(texts)
    batch = enc.tokenizer(texts, padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.inference_mode():
        cls = enc.model(**batch).last_hidden_state[:, 0].numpy()
    np.testing.assert_allclose(vectors, cls, rtol=1e-4, atol=1e-5)
    assert not np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    normalised = TextEncoder(str(_st_folder(tiny_model, tmp_path / "st-mean", "mean", normalize=True)))
    np.testing.assert_allclose(np.linalg.norm(normalised.encode(texts), axis=1), 1.0, atol=1e-5)


def test_st_folder_missing_pooling_config_or_transformer_files(tiny_model: Path, tmp_path: Path) -> None:
    folder = _st_folder(tiny_model, tmp_path / "st", "mean", normalize=True)
    (folder / "0_Transformer" / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=r"transformer module 0_Transformer.*missing model\.safetensors"):
        encoder_layout(folder)
    folder2 = _st_folder(tiny_model, tmp_path / "st2", "mean", normalize=True)
    shutil.rmtree(folder2 / "1_Pooling")
    with pytest.raises(ModelError, match=r"missing 1_Pooling/config\.json"):
        encoder_layout(folder2)


def test_encode_order_does_not_depend_on_length_sorting(tiny_model: Path) -> None:
    enc = TextEncoder(str(tiny_model), batch_size=2)
    texts = ["a", "a much longer text about space rockets", "mid length text", "b"]
    together = enc.encode(texts)
    alone = np.stack([enc.encode([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_corpus_embeddings_stream_once_and_reuse_cache(tiny_model: Path, tmp_path: Path) -> None:
    calls = []

    def texts() -> object:
        calls.append(1)
        return (f"document {i} about topic {i % 3}" for i in range(10))

    kwargs = {"model": str(tiny_model), "max_length": 16, "fingerprint": "f" * 64, "n": 10, "cache_dir": tmp_path}
    first = corpus_embeddings(texts, **kwargs)  # type: ignore[arg-type]
    second = corpus_embeddings(texts, **kwargs)  # type: ignore[arg-type]
    assert len(calls) == 1 and first.shape == (10, 32)
    np.testing.assert_array_equal(first, second)
    meta = corpus_cache(str(tiny_model), 16, "f" * 64, tmp_path).meta()
    assert meta["n"] == 10 and meta["docs_per_second"] > 0 and meta["pooling"] == "mean"


def test_bf16_encoding_is_close_to_fp32(tiny_model: Path) -> None:
    texts = ["a", "a much longer text about space rockets", "mid length text"]
    fp32 = TextEncoder(str(tiny_model)).encode(texts)
    bf16 = TextEncoder(str(tiny_model), precision="bf16").encode(texts)
    assert bf16.dtype == np.float32
    cosine = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cosine.min() > 0.99


def test_precision_is_part_of_the_cache_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fp32 = corpus_cache("all-MiniLM-L6-v2", 256, "a" * 64, tmp_path, precision="fp32")
    bf16 = corpus_cache("all-MiniLM-L6-v2", 256, "a" * 64, tmp_path, precision="bf16")
    assert fp32.folder.name == "all-MiniLM-L6-v2-256-" + "a" * 16  # existing caches keep their names
    assert bf16.folder.name == fp32.folder.name + "-bf16"
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    assert encoder_precision() == "bf16" and encoder_precision("fp32") == "fp32"
    assert corpus_cache("all-MiniLM-L6-v2", 256, "a" * 64, tmp_path).folder == bf16.folder
    monkeypatch.setenv(PRECISION_ENV, "fp16")
    with pytest.raises(ValueError, match="fp16"):
        encoder_precision()
