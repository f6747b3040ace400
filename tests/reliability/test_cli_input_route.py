"""Issue 17, items 10-13: budgets above the shard count, unknown router options, tuned paths that
resolve from anywhere, and the message of ``hybrid@m`` on an index without tuned routing."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from selectsearch.cli import main
from selectsearch.errors import RouteSpecError

from .cli_input_fixtures import last_err

EVAL = ["--measures", "nDCG@10", "--k", "10"]


# ---- item 10: budgets beyond the shard count -------------------------------------------------------------------

def test_single_budget_above_shard_count_is_refused_in_eval(index8: Path, beir8: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "cori@99", *EVAL,
                 "--json", str(out)]) == 2
    err = last_err(capsys)
    assert "cori@99" in err and "8 shards" in err
    assert not out.exists()


def test_single_budget_above_shard_count_is_refused_in_search(index8: Path, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    assert main(["search", str(index8), "--query", "rocket orbit", "--route", "centroid@9"]) == 2
    assert "8 shards" in last_err(capsys)


def test_single_budget_above_shard_count_is_refused_in_python(index8: Path) -> None:
    from selectsearch.search import SelectiveSearcher

    with pytest.raises(RouteSpecError, match="8 shards"):
        SelectiveSearcher.open(index8, route="centroid@9")


def test_sweep_beyond_shard_count_is_clamped_with_a_warning(index8: Path, beir8: Path, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "r.json"
    with caplog.at_level(logging.WARNING):
        assert main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "centroid@1:16", *EVAL,
                     "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["route"] for r in rows] == [f"centroid@{m}" for m in range(1, 9)]
    assert all(r["cost"]["shards_searched"] == r["budget"] for r in rows)
    assert any("centroid@1:16" in m and "8 shards" in m for m in caplog.messages)


def test_sweep_entirely_beyond_shard_count_is_refused(index8: Path, beir8: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "centroid@9:16", *EVAL]) == 2
    assert "8 shards" in last_err(capsys)


def test_search_refuses_a_sweep(index8: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", str(index8), "--query", "rocket orbit", "--route", "centroid@1:4"]) == 2
    err = last_err(capsys)
    assert "centroid@1:4" in err and "one budget" in err


def test_search_refuses_two_routes(index8: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", str(index8), "--query", "x", "--route", "centroid@1", "--route", "all"]) == 2
    assert "--route" in last_err(capsys)


# ---- item 11: unknown router options ----------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["csi_rat=0.1", "bogus=3"])
def test_unknown_router_option_is_refused_naming_the_valid_ones(index8: Path, beir8: Path, option: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "redde@2", *EVAL,
                 "--router-option", option]) == 2
    err = last_err(capsys)
    assert option.split("=")[0] in err and "csi_rate" in err and "depth" in err


def test_scoped_option_the_router_does_not_know_is_refused(index8: Path, beir8: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "cori@2", *EVAL,
                 "--router-option", "cori.belief=0.3"]) == 2
    err = last_err(capsys)
    assert "cori.belief" in err and "cori_belief" in err


def test_unscoped_option_goes_only_to_routers_that_take_it(index8: Path, beir8: Path) -> None:
    # csi_rate is redde's; centroid must not refuse it, and the run must not fail
    assert main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "centroid@1", "--route", "redde@1",
                 *EVAL, "--router-option", "csi_rate=0.5", "--router-option", "cori.cori_belief=0.3",
                 "--route", "cori@1"]) == 0


def test_option_for_a_router_absent_from_the_run_is_refused(index8: Path, beir8: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "centroid@1", *EVAL,
                 "--router-option", "taily_v=20"]) == 2
    assert "taily_v" in last_err(capsys)


@pytest.mark.parametrize("factory,kwargs", [
    ("selectsearch.route.sample:make_sample_router", {"csi_rat": 0.1}),
    ("selectsearch.route.stats:make_stats_router", {"bogus": 3}),
])
def test_every_factory_refuses_unknown_options(index8: Path, factory: str, kwargs: dict[str, object]) -> None:
    import importlib

    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import parse_route

    module, _, name = factory.partition(":")
    make = getattr(importlib.import_module(module), name)
    spec = parse_route("redde@1" if "sample" in module else "cori@1")
    with pytest.raises(RouteSpecError, match=next(iter(kwargs))):
        make(spec, ShardedIndex.open(index8), **kwargs)


def test_make_router_refuses_unknown_option(index8: Path) -> None:
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import make_router

    with pytest.raises(RouteSpecError, match="cori_belief"):
        make_router("cori@1", ShardedIndex.open(index8), cori_belif=0.3)


# ---- items 12 and 13: tuned routing ----------------------------------------------------------------------------

@pytest.fixture()
def tuned_index(index8: Path, beir8: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of index8 tuned with a RELATIVE --data (run from the data's parent folder, which is
    also $SELECTSEARCH_DATA)."""
    index = tmp_path / "idx"
    shutil.copytree(index8, index)
    monkeypatch.chdir(beir8.parent)
    monkeypatch.setenv("SELECTSEARCH_DATA", str(beir8.parent))
    assert main(["-q", "tune-route", str(index), "--data", beir8.name, "--logs", "train",
                 "--routers", "centroid,cori,knn", "--step", "0.5"]) == 0
    return index


def test_routing_json_paths_resolve_from_anywhere(tuned_index: Path, beir8: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stored = json.loads((tuned_index / "routing.json").read_text())
    assert Path(stored["options"]["knn.data"]).is_absolute()
    assert Path(stored["options"]["knn.data"]) == beir8.resolve()
    assert stored["data_root_relative"] == beir8.name
    monkeypatch.delenv("SELECTSEARCH_DATA")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = elsewhere / "r.json"
    assert main(["-q", "eval", str(tuned_index), "--data", str(beir8), "--route", "hybrid@2", *EVAL,
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())[0]["route"] == "hybrid@2"


def test_knn_data_option_and_data_env_override_the_stored_path(tuned_index: Path, beir8: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import make_router

    # the data moved: the stored absolute path no longer exists
    moved_root = tmp_path / "moved"
    shutil.copytree(beir8, moved_root / beir8.name)
    routing = tuned_index / "routing.json"
    stored = json.loads(routing.read_text())
    stored["options"]["knn.data"] = str(tmp_path / "gone" / beir8.name)
    routing.write_text(json.dumps(stored))
    index = ShardedIndex.open(tuned_index)
    monkeypatch.delenv("SELECTSEARCH_DATA", raising=False)
    with pytest.raises(RouteSpecError, match=r"knn\.data"):
        make_router("hybrid@2", index)
    # --router-option knn.data= (outside hybrid's scope) reaches hybrid's knn
    router = make_router("hybrid@2", index, **{"knn.data": str(moved_root / beir8.name)})
    assert [r.name for r in router.routers] == ["centroid", "cori", "knn"]
    # SELECTSEARCH_DATA: the stored folder's name under the data root
    monkeypatch.setenv("SELECTSEARCH_DATA", str(moved_root))
    router = make_router("hybrid@2", index)
    assert [r.name for r in router.routers] == ["centroid", "cori", "knn"]


def test_hybrid_without_tuned_routing_names_tune_route(index8: Path, beir8: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "hybrid@2", *EVAL]) == 2
    err = last_err(capsys)
    assert "tune-route" in err and "no routing" in err.lower()
    assert "rebuild" not in err


@pytest.mark.parametrize("flag", ["--query", "--queries"])
def test_search_refuses_a_repeated_query_flag(index8: Path, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", str(index8), flag, "a", flag, "b"]) == 2
    assert f"{flag} given 2 times" in last_err(capsys)
