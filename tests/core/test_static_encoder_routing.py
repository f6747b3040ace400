"""A static (model2vec) encoder behind ``knn.encoder``, alone and as a sub-router of ``hybrid``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selectsearch.index.sharded import ShardedIndex
from selectsearch.models.static_encoder import StaticEncoder
from selectsearch.route import make_router, parse_route
from selectsearch.types import Query

from .conftest import TOPICS


@pytest.fixture(scope="module")
def static_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model2vec folder with random token vectors (no distillation: a text is still the mean of
    its tokens' vectors, so queries that share words with logged queries land near them)."""
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    from selectsearch.models.encoder import resolve_model_path

    tokenizer = Tokenizer.from_file(str(resolve_model_path(None) / "tokenizer.json"))
    vectors = np.random.default_rng(0).standard_normal((tokenizer.get_vocab_size(), 24)).astype(np.float32)
    folder = tmp_path_factory.mktemp("static") / "m2v"
    StaticModel(vectors, tokenizer, config={"model_type": "model2vec"}, normalize=True).save_pretrained(folder)
    return folder


def _click_log(index: ShardedIndex, path: Path) -> Path:
    lines = []
    for topic, words in TOPICS.items():
        docs = [d for d in index.shard_of_doc if d.startswith(topic)][:5]
        lines += [f"{words[i]} {words[i + 1]}\t{d}\t2" for i in range(3) for d in docs]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_knn_routes_with_a_model2vec_folder_as_its_encoder(tiny_index: Path, static_folder: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path / "cache"))
    index = ShardedIndex.open(tiny_index)
    log = _click_log(index, tmp_path / "clicks.tsv")
    router = make_router(parse_route("knn@1"), index, logs=str(log), k=5, encoder=str(static_folder))
    assert isinstance(router.encoder, StaticEncoder) and router.kb.shape[1] == 24
    queries = [Query(topic, f"{words[0]} {words[3]}") for topic, words in TOPICS.items()]
    ranking = router.rank(queries)
    for q, row in zip(queries, ranking.tolist(), strict=True):
        clicked = {index.shard_of_doc[d] for d in index.shard_of_doc if d.startswith(q.query_id)}
        assert row[0] in clicked
    encoded = router.encoded_queries()
    assert encoded is not None and encoded.model == str(static_folder) and encoded.vectors.shape == (4, 24)
    # the knowledge base was embedded once by this encoder and cached under its name
    assert any(p.parent.name.startswith("m2v-256-logs-") for p in (tmp_path / "cache").rglob("meta.json"))
    # as a sub-router of hybrid@m, through the run's knn.* options
    fused = make_router(parse_route("hybrid@1"), index, routers="knn,cori", weights="1,0",
                        **{"knn.logs": str(log), "knn.k": "5", "knn.encoder": str(static_folder)})
    assert np.array_equal(fused.rank(queries)[:, 0], ranking[:, 0])
