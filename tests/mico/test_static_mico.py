"""MICO on a static (model2vec) encoder: frozen features from its table, the saved model routes with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from selectsearch.errors import ModelError
from selectsearch.mico.config import MicoConfig
from selectsearch.mico.run import train_from_data
from selectsearch.models.static_encoder import StaticEncoder, is_static_folder
from selectsearch.types import Query


@pytest.fixture(scope="module")
def static_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model2vec folder with random token vectors: texts are bags of their tokens' vectors."""
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    from selectsearch.models.encoder import resolve_model_path

    tokenizer = Tokenizer.from_file(str(resolve_model_path(None) / "tokenizer.json"))
    vectors = np.random.default_rng(0).standard_normal((tokenizer.get_vocab_size(), 32)).astype(np.float32)
    folder = tmp_path_factory.mktemp("static") / "m2v"
    StaticModel(vectors, tokenizer, config={"model_type": "model2vec"}, normalize=True).save_pretrained(folder)
    return folder


def _config(encoder: Path, **kw: object) -> MicoConfig:
    base = {"n_clusters": 4, "encoder": str(encoder), "max_length": 32, "epochs": 10, "batch_size": 16,
            "head_lr": 0.01, "warmup_steps": 5, "val_fraction": 0.2, "patience": 0, "seed": 0}
    base.update(kw)
    return MicoConfig(**base)  # type: ignore[arg-type]


def test_frozen_mico_trains_on_static_features_and_routes_with_them(beir: Path, static_folder: Path,
                                                                   tmp_path: Path) -> None:
    import torch

    from selectsearch.mico.model import MicoModelFolder
    from selectsearch.route.mico import MicoRouter

    out = tmp_path / "mico-static"
    result = train_from_data([beir], "train", _config(static_folder), out=out)
    saved = json.loads((out / "config.json").read_text())
    assert saved["encoder"] == "encoder" and saved["encoder_frozen"] and saved["dim"] == 32
    assert is_static_folder(out / "encoder")  # the model carries the table its heads were trained on
    encoder = MicoModelFolder(out).text_encoder()
    assert isinstance(encoder, StaticEncoder) and encoder.max_length == 32
    queries = [Query(f"q{i}", t) for i, t in enumerate(["rocket orbit", "flour sugar", "stock bond", "gene dna"])]
    vectors = StaticEncoder(static_folder, max_length=32).encode([q.text for q in queries])
    with torch.inference_mode():
        expected = result.query_head(torch.as_tensor(vectors)).numpy()
    router = MicoRouter(out)
    np.testing.assert_allclose(router.scores(queries), expected, rtol=1e-5, atol=1e-5)
    # the planted topics go to four different clusters (chance of that: 4!/4^4 ~ 9%)
    assert len(set(router.rank(queries)[:, 0].tolist())) == 4
    assert result.best_auc > 60


def test_full_mode_refuses_a_static_encoder(beir: Path, static_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="--mode frozen"):
        train_from_data([beir], "train", _config(static_folder, mode="full", max_steps=2), out=tmp_path / "full")
