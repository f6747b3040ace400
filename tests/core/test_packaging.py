"""The wheel: what it ships (py.typed, the Java helpers' sources, every module, the metadata), and
that an installed wheel, away from the source tree, compiles and runs the Java helper."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the sources (a build writes build/ and egg-info
    next to them, never into the working tree), offline with the installed setuptools."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "selectsearch", src / "selectsearch", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--no-cache-dir", "-q", "-w", str(out), str(src)],
                   check=True, capture_output=True, timeout=300, cwd=tmp)
    (built,) = out.glob("selectsearch-*.whl")
    return built


def test_wheel_ships_types_java_sources_and_every_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "selectsearch/py.typed" in names
    # the sources helper_classpath compiles live in these modules
    from selectsearch.lucene import batch_java, java_helpers

    for module in (batch_java, java_helpers):
        assert Path(module.__file__).relative_to(ROOT).as_posix() in names  # type: ignore[arg-type]
    assert "class BatchSearch" in batch_java.BATCH_SOURCE and "class Terms" in java_helpers.TERMS_SOURCE
    # every file of the package: modules, and data such as the serve page (serve/static/*.html)
    package = {p.relative_to(ROOT).as_posix() for p in (ROOT / "selectsearch").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert any(not name.endswith(".py") for name in package - {"selectsearch/py.typed"})
    assert package - names == set()


def test_wheel_metadata(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        (meta_name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        meta = z.read(meta_name).decode()
        entry_points = z.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    for line in ("Project-URL: Homepage, ", "Project-URL: Issues, ", "Classifier: Typing :: Typed",
                 "Classifier: License :: OSI Approved :: Apache Software License",
                 "Requires-Dist: sentence-transformers", "Requires-Dist: filelock"):
        assert line in meta
    assert "selectsearch = selectsearch.cli:run" in entry_points


_CHILD = r"""
import json, os, sys
from pathlib import Path
import selectsearch
from selectsearch.lucene import jvm
from selectsearch.lucene.java_helpers import BATCH_CLASS
jvm.start_jvm()
package = Path(selectsearch.__file__).parent
print(json.dumps({"module": selectsearch.__file__, "py_typed": (package / "py.typed").is_file(),
                  "helper": jvm.optional_jclass(BATCH_CLASS) is not None,
                  "compiled": sorted(p.name for p in Path(os.environ["SELECTSEARCH_CACHE"]).rglob("*.class"))}))
"""


@pytest.mark.integration
def test_installed_wheel_compiles_and_loads_the_java_helper(wheel: Path, tmp_path: Path) -> None:
    from selectsearch.lucene.java_helpers import javac_candidates

    if not javac_candidates():
        pytest.skip("no javac on this machine: the helper is optional")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--no-cache-dir", "-q", str(wheel)], check=True, capture_output=True, timeout=300)
    # the dependencies come from this interpreter's site-packages (a plain path: its .pth files,
    # e.g. an editable install of selectsearch, are not run)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["SELECTSEARCH_CACHE"] = str(tmp_path / "cache")
    done = subprocess.run([str(python), "-c", _CHILD], capture_output=True, text=True, timeout=300, env=env,
                          cwd=tmp_path)  # not the source tree: the installed package must be what runs
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(result["module"]).is_relative_to(venv)
    assert result["py_typed"] and result["helper"]
    assert "BatchSearch.class" in result["compiled"] and "Terms.class" in result["compiled"]
