"""`selectsearch plot`: PDF, SVG and PNG from eval results with their setup; bad input refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selectsearch.cli import main


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


@pytest.fixture(scope="module")
def results(tiny_index: Path, tiny_beir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plot") / "results.json"
    assert main(["-q", "eval", str(tiny_index), "--data", str(tiny_beir), "--route", "all", "--route", "centroid@1:4",
                 "--route", "random@1:4", "--route", "ranks", "--route", "oracle@1:2", "--measures", "nDCG@10",
                 "R@100", "--k", "100", "--postings", "--json", str(out)]) == 0
    return out


def test_writes_pdf_svg_png_with_title_and_caption(results: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    capsys.readouterr()
    for suffix, magic in ((".pdf", b"%PDF"), (".svg", b"<?xml"), (".png", b"\x89PNG")):
        out = tmp_path / f"fig{suffix}"
        assert main(["plot", str(results), "--out", str(out), "--preset", "column"]) == 0
        assert out.read_bytes()[:len(magic)] == magic
        printed = capsys.readouterr().out
        assert printed.splitlines()[0] == str(out)
        assert "caption: Quality against cost of selective search on beir (120 documents in 4 kmeans-lexical shards" \
            in printed and "4 test queries" in printed
    title = "beir: 4 kmeans-lexical shards, 4 test queries"
    assert f"/Title ({title})".encode() in (tmp_path / "fig.pdf").read_bytes()
    assert b"/Subject (Quality against cost" in (tmp_path / "fig.pdf").read_bytes()
    assert f"<dc:title>{title}</dc:title>" in (tmp_path / "fig.svg").read_text()
    png = Image.open(tmp_path / "fig.png")
    assert png.text["Title"] == title and png.text["Description"].startswith("Quality against cost")
    # a column figure is one column wide (3.4 in at 300 dpi), its panels stacked
    width, height = png.size
    assert width == pytest.approx(3.4 * 300, abs=2) and height > width


@pytest.mark.parametrize("options", [["--x", "shards"], ["--x", "cpu"], ["--x", "postings"], ["--relative"],
                                     ["--preset", "page", "--no-bands", "--no-labels", "--no-title"],
                                     ["--metrics", "R@100", "--title", "mine"]])
def test_axes_and_presets(results: Path, tmp_path: Path, options: list[str]) -> None:
    out = tmp_path / "f.png"
    assert main(["plot", str(results), "--out", str(out), *options]) == 0
    assert out.stat().st_size > 5000


def test_the_figure_shows_the_exhaustive_value_and_budget_labels(results: Path, tmp_path: Path) -> None:
    rows = json.loads(results.read_text())
    exhaustive = rows[0]["metrics"]["nDCG@10"]
    out = tmp_path / "f.svg"
    assert main(["plot", str(results), "--out", str(out), "--metrics", "nDCG@10"]) == 0
    svg = out.read_text()  # text stays text in our SVGs (svg.fonttype none)
    assert f"exhaustive {exhaustive:.4f}" in svg
    assert ">2<" in svg and ">1<" in svg  # budgets m=1, 2 at the points
    assert "ranks (own cut-off)" in svg and "centroid" in svg and "oracle" in svg
    assert main(["plot", str(results), "--out", str(out), "--metrics", "nDCG@10", "--no-labels"]) == 0
    assert ">2<" not in out.read_text() and ">1<" not in out.read_text()


@pytest.mark.parametrize("content, options, needle", [
    ("", [], "not JSON"),
    ("[]", [], "hold no rows"),
    ('{"rows": []}', [], "hold no rows"),
    ('[{"route": "all"}]', [], "not an evaluation row"),
    ('[{"route": "all", "metrics": {"nDCG@10": 0.5}, "cost": {"fraction_scored": 1.0}}]', ["--x", "postings"],
     "have no cost.postings to plot against (e.g. all); evaluate with `selectsearch eval ... --postings`"),
    ('[{"route": "all", "metrics": {"nDCG@10": 0.5}, "cost": {"fraction_scored": 1.0}}]', ["--metrics", "P@5"],
     "has no P@5; available metrics: nDCG@10"),
    ('[{"route": "x@1", "router": "x", "budget": 1, "metrics": {"nDCG@10": 0.5}, "cost": {"fraction_scored": 1.0}}]',
     ["--relative"], "needs the 'all' row"),
])
def test_refuses_bad_input_in_one_line(tmp_path: Path, content: str, options: list[str], needle: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "r.json"
    results.write_text(content)
    out = tmp_path / "p.png"
    assert main(["plot", str(results), "--out", str(out), *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not out.exists()


def test_refuses_an_unknown_format_and_a_missing_file(results: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(results), "--out", str(tmp_path / "p.jpg")]) == 2
    assert "one of .pdf, .svg, .png" in _err(capsys)
    assert main(["plot", str(tmp_path / "none.json"), "--out", str(tmp_path / "p.png")]) == 2
    assert "not found" in _err(capsys)
    assert not list(tmp_path.glob("p.*"))


def test_markdown_table_shows_the_test_against_the_baseline(results: Path) -> None:
    from selectsearch.bench.report.curves import markdown_table

    rows = json.loads(results.read_text())
    table = markdown_table(rows, ["nDCG@10", "R@100"]).splitlines()
    assert table[0].endswith("| vs all nDCG@10 | W/T/L |")
    cells = {line.split(" | ")[0].strip("| "): line for line in table[2:]}
    c = next(r for r in rows if r["route"] == "centroid@1")["significance"]["measures"]["nDCG@10"]
    assert cells["centroid@1"].endswith(f"| {c['verdict']} (p={c['t']['p_holm']:.2g}) | "
                                        f"{c['wins']}/{c['ties']}/{c['losses']} |")
    assert cells["all"].endswith("|  |  |")
