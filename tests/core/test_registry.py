"""Plugin registries (issue 18): a user's router and partitioner registered in one line (or by an
installed package's entry point), used by name through the CLI and ``evaluate()``, their options
declared, converted and checked, and ``--help`` generated from the registries."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from selectsearch.cli import main
from selectsearch.errors import RouteSpecError, SelectSearchError
from selectsearch.registry import REQUIRED, Param, Registry
from selectsearch.route import ROUTERS, Router, RouteSpec, as_route, make_router, register_router
from selectsearch.types import Query

EVAL = ["--measures", "nDCG@10", "--k", "10"]


class LargestFirst(Router):
    """Largest shards first, whatever the query (a user's router)."""

    def __init__(self, index: Any, *, reverse: bool = False) -> None:
        order = np.argsort(-np.asarray(index.shard_sizes), kind="stable")
        self.order = (order[::-1] if reverse else order).astype(np.int32)

    def rank(self, queries: Sequence[Query]) -> np.ndarray:
        return np.tile(self.order, (len(queries), 1))


@pytest.fixture()
def largest() -> Iterator[str]:
    register_router("largest", LargestFirst)
    yield "largest"
    ROUTERS.unregister("largest")


def _order(index: Path) -> list[int]:
    from selectsearch.index.sharded import ShardedIndex

    return np.argsort(-np.asarray(ShardedIndex.open(index).shard_sizes), kind="stable").tolist()


def test_custom_router_by_name_through_the_cli(largest: str, tiny_index: Path, tiny_beir: Path,
                                               tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    assert main(["-q", "eval", str(tiny_index), "--data", str(tiny_beir), "--route", "largest@1:2",
                 "--route", "all", *EVAL, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["route"] for r in rows] == ["largest@1", "largest@2", "all"]
    assert [r["cost"]["shards_searched"] for r in rows[:2]] == [1.0, 2.0]
    trace = tmp_path / "trace.jsonl"
    assert main(["-q", "search", str(tiny_index), "--query", "rocket orbit", "--route", "largest@1",
                 "--router-option", "reverse=yes", "--trace", str(trace)]) == 0
    assert json.loads(trace.read_text())["shards"] == [_order(tiny_index)[-1]]  # reverse=yes: the smallest


def test_custom_router_options_are_checked(largest: str, tiny_index: Path, tiny_beir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "eval", str(tiny_index), "--data", str(tiny_beir), "--route", "largest@1", *EVAL,
                 "--router-option", "largest.revers=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "revers" in err and "reverse" in err


def test_custom_router_through_evaluate(largest: str, tiny_index: Path, tiny_beir: Path) -> None:
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.evaluation import evaluate
    from selectsearch.search import SelectiveSearcher

    searcher = SelectiveSearcher.open(tiny_index)
    queries, qrels = load_queries(tiny_beir, split="test"), load_qrels(tiny_beir, split="test")
    shards: dict[str, set[int]] = {}

    def record(spec: RouteSpec, results: dict[str, Any]) -> None:
        shards[str(spec)] = {s for r in results.values() for s in r.trace.shards}

    by_name = evaluate(searcher, queries, qrels, ["largest@1"], ["nDCG@10"], k=10, on_results=record)
    assert by_name[0]["route"] == "largest@1" and shards["largest@1"] == {_order(tiny_index)[0]}
    evaluate(searcher, queries, qrels, ["largest@1"], ["nDCG@10"], k=10, router_options={"largest.reverse": True},
             on_results=record)
    assert shards["largest@1"] == {_order(tiny_index)[-1]}
    # a Router object or class in place of a spec (issue 18: "'LargestFirst' object has no attribute 'expand'")
    index = searcher.index
    for route in (LargestFirst(index), LargestFirst, RouteSpec("largest", 1, router=LargestFirst(index))):
        rows = evaluate(searcher, queries, qrels, [route], ["nDCG@10"], k=10)
        assert len(rows) == 1 and rows[0]["metrics"]["nDCG@10"] >= 0
    assert evaluate(searcher, queries, qrels, [RouteSpec("largest", 1, router=LargestFirst)], ["nDCG@10"],
                    k=10)[0]["metrics"] == by_name[0]["metrics"]


def test_router_object_and_class_as_routes(tiny_index: Path) -> None:
    from selectsearch.index.sharded import ShardedIndex

    index = ShardedIndex.open(tiny_index)
    router = LargestFirst(index)
    assert as_route(router).router is router and as_route(router).name == "LargestFirst"
    assert make_router(as_route(router), index) is router
    built = make_router(RouteSpec("largest", 2, router=LargestFirst), index)
    assert isinstance(built, LargestFirst) and built.name == "largest"
    with pytest.raises(RouteSpecError):
        as_route(3)  # type: ignore[arg-type]


def test_registered_router_is_named_and_duplicates_are_refused(largest: str, tiny_index: Path) -> None:
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import parse_route

    router = make_router(parse_route("largest@2"), ShardedIndex.open(tiny_index))
    assert router.name == "largest" and router.select([Query("q", "x")], 2) == [_order(tiny_index)[:2]]
    with pytest.raises(RouteSpecError, match="registered already"):
        register_router("largest", lambda index: LargestFirst(index))
    with pytest.raises(RouteSpecError, match="must match"):
        register_router("Bad@Name", LargestFirst)
    register_router("largest", LargestFirst)  # the same factory again: no error
    with pytest.raises(RouteSpecError, match="unknown router 'nosuch'"):
        parse_route("nosuch@1")


def test_help_lists_every_registered_router_with_its_options(largest: str, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    for verb in ("search", "eval"):
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        out = capsys.readouterr().out
        for name in ROUTERS:
            assert f"\n  {name} " in out, (verb, name)
            for param in ROUTERS[name].param_names(ROUTERS.context):
                assert f"{param} (" in out, (verb, name, param)
        assert "reverse (bool, default False)" in out
    with pytest.raises(SystemExit):
        main(["index", "--help"])
    out = capsys.readouterr().out
    assert "{kmeans,mico,random}" in out and "kmeans-lexical" in out and "vocab_size (int, default 50000)" in out


def test_option_types_are_converted_and_bad_values_refused(tiny_index: Path) -> None:
    assert ROUTERS.check("redde", {"csi_rate": "0.1", "depth": "30"}) == {"csi_rate": 0.1, "depth": 30}
    assert ROUTERS.check("distilled", {"retrieval": "off"}) == {"retrieval": False}
    assert ROUTERS.check("cori", {"cori_belief": 0.3}) == {"cori_belief": 0.3}  # typed values pass as given
    with pytest.raises(RouteSpecError, match="must be numbers"):
        ROUTERS.check("redde", {"depth": "deep"})
    with pytest.raises(RouteSpecError, match="csi_rate, depth"):
        ROUTERS.check("redde", {"dpeth": 3})


# ---- partitioners ------------------------------------------------------------------------------------------------

def test_custom_partitioner_registers_in_one_line_and_builds(tiny_beir: Path, tmp_path: Path) -> None:
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.partition.random_ import RandomPartitioner
    from selectsearch.partition.registry import PARTITIONERS, register_partitioner

    @dataclass(frozen=True)
    class Reseeded(RandomPartitioner):
        """Random shards with the seed shifted (a user's partitioner)."""

        shift: int = 1
        name: ClassVar[str] = "reseeded"

    register_partitioner("reseeded", Reseeded)
    try:
        out = tmp_path / "idx"
        assert main(["-q", "index", str(tiny_beir), "--out", str(out), "--shards", "3", "--threads", "1",
                     "--partitioner", "reseeded"]) == 0
        assert ShardedIndex.open(out).n_shards == 3
        assert PARTITIONERS["reseeded"].param_names(PARTITIONERS.context) == ("shift",)
    finally:
        PARTITIONERS.unregister("reseeded")


def test_partitioner_options_are_checked() -> None:
    from selectsearch.partition.registry import make_partitioner, resolve_partitioner

    assert resolve_partitioner("kmeans", "dense") == "kmeans-dense"
    assert make_partitioner("kmeans", "lexical", seed=3, options={"sample_size": "500"}).sample_size == 500
    with pytest.raises(SelectSearchError, match="sample_size"):
        make_partitioner("kmeans", "lexical", options={"sample_sise": 5})
    with pytest.raises(SelectSearchError, match="kmeans, mico, random"):
        make_partitioner("kmean")
    with pytest.raises(SelectSearchError, match="needs the option model"):
        make_partitioner("mico")


# ---- entry points: an installed package adds plugins -------------------------------------------------------------

def _install_plugin(root: Path) -> None:
    """A package ``ssplugin`` with a router and a partitioner, installed as a dist-info on ``root``."""
    (root / "ssplugin.py").write_text(
        "import numpy as np\n"
        "from selectsearch.route import Router\n"
        "from selectsearch.partition.random_ import RandomPartitioner\n"
        "class Reverse(Router):\n"
        "    '''Shards in reverse id order.'''\n"
        "    def __init__(self, n_shards, *, offset: int = 0):\n"
        "        self.order = np.roll(np.arange(n_shards)[::-1], offset).astype(np.int32)\n"
        "    def rank(self, queries):\n"
        "        return np.tile(self.order, (len(queries), 1))\n"
        "class PluginRandom(RandomPartitioner):\n"
        "    '''Random shards from a plugin.'''\n")
    info = root / "ssplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ssplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[selectsearch.routers]\nreverse = ssplugin:Reverse\n\n"
                                           "[selectsearch.partitioners]\nplugin-random = ssplugin:PluginRandom\n")


def test_entry_points_add_routers_and_partitioners(tiny_index: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from selectsearch.index.sharded import ShardedIndex

    _install_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    routers = Registry("router", group="selectsearch.routers", context=("n_shards",), error=RouteSpecError)
    assert "reverse" in routers and routers["reverse"].description == "Shards in reverse id order."
    assert routers["reverse"].param_names(routers.context) == ("offset",)
    index = ShardedIndex.open(tiny_index)
    router = routers.build("reverse", {"offset": "1"}, {"n_shards": index.n_shards})
    assert router.rank([Query("q", "x")]).tolist() == [[0, 3, 2, 1]]
    partitioners = Registry("partitioner", group="selectsearch.partitioners", context=("seed",))
    assert partitioners.build("plugin-random", {}, {"seed": 4}).seed == 4
    sys.modules.pop("ssplugin", None)


# ---- the registry itself -----------------------------------------------------------------------------------------

def test_signature_params_types_defaults_and_help() -> None:
    reg = Registry("thing", group=None, context=("seed",))

    def make(seed: int, *, size: int = 3, rate: float | None = None, flag: bool = False, label: str = "x",
             path: str = REQUIRED) -> dict[str, Any]:
        """Make a thing.

        Args:
            size: how big.
        """
        return {"seed": seed, "size": size, "rate": rate, "flag": flag, "label": label, "path": path}

    reg.register("thing", make)
    params = {p.name: p for p in reg["thing"].params(reg.context)}
    assert [(p.dtype, p.default) for p in params.values()] == [
        (int, 3), (float, None), (bool, False), (str, "x"), (str, REQUIRED)]
    assert params["size"].help == "how big." and reg["thing"].description == "Make a thing."
    made = reg.build("thing", {"size": "5", "flag": "1", "path": "p"}, {"seed": 9, "other": 1})
    assert made == {"seed": 9, "size": 5, "rate": None, "flag": True, "label": "x", "path": "p"}
    with pytest.raises(SelectSearchError, match="needs the option path"):
        reg.build("thing", {}, {"seed": 0})
    assert Param("n", int, 2, "count").describe() == "n (int, default 2): count"


def test_registries_import_nothing_heavy() -> None:
    code = ("import sys, selectsearch.registry, selectsearch.route, selectsearch.partition.registry, "
            "selectsearch.rerank.formats\n"
            "from selectsearch.cli._common import routers_help\n"
            "routers_help()\n"
            "print([m for m in ('torch', 'jnius', 'faiss', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
