"""Suite-wide test settings, and the one local Ray cluster the Ray tests share."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

# tests never write into the working tree: Hypothesis keeps its files (./.hypothesis by default)
# in a temporary folder, and no example database
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="selectsearch-hypothesis-"))
settings.register_profile("selectsearch", database=None)
settings.load_profile("selectsearch")

# Static query encoders live in one session folder, not in each test's private SELECTSEARCH_CACHE:
# ``minilm-static`` is distilled once per machine (about 30 s) into the user's cache and linked
# here; the ``adapted`` encoders of the tests' throwaway indexes (the ``knn`` default) are built
# here and vanish with the session instead of piling up in the user's cache.
if not os.environ.get("SELECTSEARCH_STATIC_ENCODERS"):
    from pathlib import Path

    from selectsearch import settings as _settings

    _shared = _settings.static_encoders_dir()
    _session = Path(tempfile.mkdtemp(prefix="selectsearch-static-encoders-"))
    os.environ["SELECTSEARCH_STATIC_ENCODERS"] = str(_session)

    @pytest.fixture(scope="session", autouse=True)
    def _static_encoders() -> Iterator[None]:
        """Link the user's ``minilm-static`` (distilling it there first if it is missing); remove
        the session folder at the end (the link, not what it points to)."""
        import shutil

        from selectsearch.models.static_encoder import static_encoder_folder

        (_session / "minilm-static").symlink_to(static_encoder_folder("minilm-static", cache_dir=_shared))
        yield
        shutil.rmtree(_session, ignore_errors=True)


def loopback_only() -> bool:
    """True inside a network namespace whose only interface is loopback."""
    try:
        return [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A head and two worker nodes (1 CPU each) on 127.0.0.1; the test process is the driver.

    One per test session, shared by the serving and the distributed-build tests (a driver joins
    one cluster at a time; tests that kill nodes add their own victims). Ray uses the machine's
    non-loopback address for its own traffic, so it runs only inside a network namespace that
    has nothing but loopback (``make test`` does this with ``unshare -n``); elsewhere the tests
    are skipped with the command to run them. ``SELECTSEARCH_RAY_TESTS=1`` runs them anyway.
    """
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'selectsearch[ray]'")
    if not loopback_only() and os.environ.get("SELECTSEARCH_RAY_TESTS") != "1":
        pytest.skip("Ray cluster tests run in a loopback-only network namespace: "
                    "unshare -n sh -c 'ip link set lo up && exec python -m pytest tests/serve tests/build' (as root; "
                    "make test does this), or set SELECTSEARCH_RAY_TESTS=1")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
