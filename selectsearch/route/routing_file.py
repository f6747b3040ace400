"""``INDEX/routing.json``: the fusion ``selectsearch tune-route`` chose, stored with the index.

:func:`write_routing` stores what :func:`selectsearch.route.tuning.tune_hybrid` found;
``hybrid@m`` (:mod:`selectsearch.route.hybrid`) reads it with :func:`read_routing` when no
``routers``/``weights`` option is given. Its own module so that the router and the tuning, which
fits the router's weights, need not import each other.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from selectsearch import settings
from selectsearch.errors import RouteSpecError, SelectSearchError
from selectsearch.settings import DATA_ENV

__all__ = ["ROUTING_FILE", "read_routing", "stored_options", "write_routing"]

#: the tuned fusion, next to the index's manifest
ROUTING_FILE = "routing.json"
#: the ``knn`` encoder of routing files that do not name one: they were tuned before the encoder
#: was stored, when the default was the transformer (today's default is a static table)
LEGACY_KNN_ENCODER = "all-MiniLM-L6-v2"


def stored_options(tuned: dict[str, Any], index_path: str | os.PathLike[str],
                   given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fused routers' options stored in ``routing.json``, with its data folder resolved.

    ``knn.data`` (unless ``given`` holds it, e.g. ``--router-option knn.data=DIR``) is
    ``$SELECTSEARCH_DATA/<folder>`` when the folder was inside the data folder at tuning time and
    exists under ``$SELECTSEARCH_DATA`` now, else the absolute path stored. A fusion with ``knn``
    that names no ``knn.encoder`` (tuned by an older selectsearch) gets the encoder it was tuned
    with, :data:`LEGACY_KNN_ENCODER`.

    Raises:
        RouteSpecError: the stored folder does not exist any more (the message says how to point at it).
    """
    options = dict(tuned.get("options", {}))
    if "knn" in tuned.get("routers", ()) and "knn.encoder" not in options:
        options["knn.encoder"] = LEGACY_KNN_ENCODER
    given = given or {}
    data = options.get("knn.data")
    if data is None or "knn.data" in given:
        return options
    relative = tuned.get("data_root_relative")
    env = settings.data_root()
    if relative and env is not None and (env.expanduser() / relative).is_dir():
        options["knn.data"] = str((env.expanduser() / relative).resolve())
    elif not Path(str(data)).is_dir():
        hint = f" or set {DATA_ENV} to the folder holding {relative}" if relative else ""
        raise RouteSpecError(f"{Path(index_path) / ROUTING_FILE} stores knn.data={data}, which does not exist; pass "
                             f"--router-option knn.data=DIR{hint} (or re-run `selectsearch tune-route`)")
    return options


def write_routing(index_path: str | os.PathLike[str], tuned: dict[str, Any], *, overwrite: bool = False) -> Path:
    """Store ``tuned`` as ``INDEX/routing.json`` (written whole or not at all).

    Raises:
        SelectSearchError: the file exists and ``overwrite`` is false.
    """
    path = Path(index_path) / ROUTING_FILE
    if path.exists() and not overwrite:
        raise SelectSearchError(f"{path} exists (tuned before); pass --overwrite to replace it")
    tmp = path.with_name(f"{ROUTING_FILE}.{os.getpid()}.partial")
    tmp.write_text(json.dumps(tuned, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def read_routing(index_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The tuned fusion stored with an index, or ``None``.

    Raises:
        RouteSpecError: the file is not valid JSON.
    """
    path = Path(index_path) / ROUTING_FILE
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RouteSpecError(f"{path} is not valid JSON ({exc}); re-run `selectsearch tune-route`") from exc
    return data
