"""README's "Use with PyTerrier" and "Use like pyserini" snippets run as printed.

Each snippet is taken from README.md and run with only its two paths replaced: the index
(``indexes/scifact-k16``) by a tiny tuned index and the data (``../shared/data/scifact``) by a
tiny BEIR folder whose documents answer the snippets' queries.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from .conftest import COMMON, TOPICS, make_docs, write_beir

README = Path(__file__).resolve().parents[2] / "README.md"
HEALTH = ["vitamin", "deficiency", "fractures", "statins", "cancer", "bone", "risk", "trial", "dose", "patients"]


def snippet(heading: str) -> str:
    """The first ``python`` block after ``heading`` in README.md."""
    text = README.read_text()
    start = text.index(f"\n{heading}\n")
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    assert match is not None, f"no python block after {heading}"
    return match.group(1)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(index, BEIR folder)``: the planted topics plus a health topic, 4 shards, hybrid routing tuned."""
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route.tuning import tune_hybrid, write_routing

    rng = random.Random(3)
    topics = {**TOPICS, "health": HEALTH}
    docs = make_docs(n_per_topic=15)
    docs += [{"_id": f"health-{i}", "title": f"health note {i}",
              "text": " ".join(rng.choice(HEALTH) if rng.random() < 0.7 else rng.choice(COMMON)
                               for _ in range(rng.randint(8, 30)))} for i in range(15)]
    queries = {f"q-{t}": " ".join(w[:3]) for t, w in topics.items()}
    qrels = {f"q-{t}": {d["_id"]: 1 for d in docs if d["_id"].startswith(t)} for t in topics}
    root = tmp_path_factory.mktemp("readme")
    beir = write_beir(root / "beir", docs, queries, qrels)
    index = build_index(open_corpus(beir), root / "index", BuildConfig(
        n_shards=4, partitioner="kmeans", threads=1, partitioner_options={"sample_size": 1000}))
    clicks = [f"{words[i]} {words[(i + 3) % len(words)]}\t{topic}-{(i + j) % 15}\t1"
              for topic, words in topics.items() for i in range(8) for j in range(3)]
    (root / "clicks.tsv").write_text("\n".join(clicks) + "\n")
    write_routing(index, tune_hybrid(ShardedIndex.open(index), ".", str(root / "clicks.tsv"), ["centroid", "cori"],
                                     step=0.5, validation="random"))
    return Path(index), beir


def _run(code: str, index: Path, beir: Path) -> dict[str, object]:
    assert "indexes/scifact-k16" in code
    code = code.replace("indexes/scifact-k16", str(index)).replace("../shared/data/scifact", str(beir))
    namespace: dict[str, object] = {"__name__": "readme_snippet"}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


def test_use_with_pyterrier(tuned: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ns = _run(snippet("### Use with PyTerrier"), *tuned)
    table = ns["table"]
    assert list(table["name"]) == ["all", "cori@2", "hybrid@auto"]  # type: ignore[index]
    top10 = ns["top10"]
    assert 0 < len(top10) <= 10 and top10["docno"].str.startswith("health-").all()  # type: ignore[attr-defined]
    assert "p-value corrected" in capsys.readouterr().out


def test_use_like_pyserini(tuned: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ns = _run(snippet("### Use like pyserini"), *tuned)
    hits = ns["hits"]
    assert 0 < len(hits) <= 10 and hits[0].docid.startswith("health-")  # type: ignore[arg-type, index]
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(" 1 health-")
    assert len(ns["frame"]) == sum(len(h) for h in ns["results"].values())  # type: ignore[arg-type, attr-defined]
