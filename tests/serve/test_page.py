"""The search page of ``selectsearch serve`` (``GET /``, issue 22 item 6) and what it asks of
``POST /search``: every shard's router score (``explain``) and the hits' text (``snippets``).

No Ray here: the Starlette app of :func:`selectsearch.serve.app.create_app` runs over
in-process search (:class:`InProcessBackend`, the coordinator's interface answered by
:class:`~selectsearch.search.SelectiveSearcher`), served on loopback, and a real headless
chromium (Debian's, installed by the ``chromium`` fixture when missing) types a query and reads
the hits and the routing chart. The same page over the two Ray engines is tested in
``test_ray.py`` and ``test_ray_serve.py`` (loopback-only namespace).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from selectsearch.route import RouteSpec
from selectsearch.search import SelectiveSearcher
from selectsearch.serve.app import BackgroundServer, create_app, search_page
from selectsearch.serve.config import ServeConfig
from selectsearch.serve.coordinator import Coordinator
from selectsearch.types import Query, SearchResult

from ._browser import Browser, PageParser, dump_dom

DEFAULT_ROUTE = "centroid@2"


class InProcessBackend:
    """The part of :class:`~selectsearch.serve.coordinator.Coordinator` the Starlette app uses,
    answered by in-process search of the same index (validation is the coordinator's own)."""

    qrels = None

    def __init__(self, index: Path, route: str) -> None:
        self.searcher = SelectiveSearcher.open(index)
        self.index = self.searcher.index
        self.config = ServeConfig(route=route)
        self._searchers: dict[str, SelectiveSearcher] = {}
        self.default_route = self.resolve_route(route)

    def resolve_route(self, route: str | RouteSpec | None) -> RouteSpec:
        return Coordinator.resolve_route(self, route)  # type: ignore[arg-type]

    def check_request(self, queries: Sequence[Query], k: int, deadline_ms: float | None = None) -> None:
        Coordinator.check_request(self, queries, k, deadline_ms)  # type: ignore[arg-type]

    async def asearch(self, queries: Sequence[Query], k: int = 100, *, route: str | None = None,
                      deadline_ms: float | None = None, explain: bool = False) -> dict[str, SearchResult]:
        spec = str(self.resolve_route(route))
        if spec not in self._searchers:
            self._searchers[spec] = self.searcher.with_route(spec)
        return self._searchers[spec].batch_search(list(queries), k=k, explain=explain)

    def doc_text(self, doc_id: str) -> str:
        return str(self.index.doc(doc_id)["contents"])

    def describe(self) -> dict[str, Any]:
        return {"index": str(self.index.path), "n_docs": self.index.n_docs, "n_shards": self.index.n_shards,
                "default_route": str(self.default_route)}

    async def ahealth(self) -> dict[str, Any]:
        return {"ok": True}


@pytest.fixture(scope="module")
def backend(serve_index: Path) -> InProcessBackend:
    return InProcessBackend(serve_index, DEFAULT_ROUTE)


@pytest.fixture(scope="module")
def server(backend: InProcessBackend) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(backend)) as srv:  # type: ignore[arg-type]
        yield srv


def expected(index: Path, text: str, route: str, k: int) -> SearchResult:
    """In-process search of one query: what the page must show."""
    return SelectiveSearcher.open(index, route).batch_search([Query("q", text)], k=k, explain=True)["q"]


def check_page(rows: list[dict[str, str]], bars: list[dict[str, str]], want: SearchResult, n_shards: int) -> None:
    """The hits table and the chart show ``want``: its hits in order, one bar per shard with its
    router score, the searched ones marked (by a class and a ✓, not only by colour)."""
    assert [(r["data-doc-id"], int(r["data-shard"])) for r in rows] == [(h.doc_id, h.shard_id) for h in want.hits]
    assert [int(b["data-shard"]) for b in bars] == list(range(n_shards))
    assert sorted(int(b["data-shard"]) for b in bars if b["data-searched"] == "true") == sorted(want.trace.shards)
    assert {b["data-state"] for b in bars if b["data-searched"] == "true"} == {"searched"}
    scores = want.trace.extra["shard_scores"]
    assert isinstance(scores, list)
    assert [float(b["data-score"]) for b in bars] == pytest.approx(scores)


# ---------------------------------------------------------------------- served, and what /search adds
def test_page_is_one_offline_file_that_never_writes_server_text_as_html() -> None:
    html = search_page()
    assert html.lstrip().lower().startswith("<!doctype html>")
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # no CDN, nothing but this server
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", html)
    for box in ("q", "k", "route"):  # every field has its label
        assert f'<label for="{box}">' in html and f'id="{box}"' in html


def test_starlette_app_serves_the_page(backend: InProcessBackend) -> None:
    from starlette.testclient import TestClient

    with TestClient(create_app(backend)) as client:  # type: ignore[arg-type]
        r = client.get("/")
        assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
        assert r.text == search_page()
        assert "connect-src 'self'" in r.headers["content-security-policy"]
        assert client.get("/info").json()["default_route"] == DEFAULT_ROUTE
        assert client.post("/").status_code == 405


def test_fastapi_ingress_serves_the_page() -> None:
    pytest.importorskip("ray.serve")
    from starlette.testclient import TestClient

    from selectsearch.serve.deployments import app

    with TestClient(app) as client:
        r = client.get("/")
        assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
        assert r.text == search_page()
        assert "connect-src 'self'" in r.headers["content-security-policy"]
    # the typed request model takes the page's two flags and refuses a non-boolean one (the
    # search route itself needs a Serve replica: test_ray_serve.py)
    from pydantic import ValidationError

    from selectsearch.serve.deployments import SearchRequest, validation_error

    assert SearchRequest.model_validate({"query": "x", "explain": True, "snippets": True}).explain
    with pytest.raises(ValidationError) as err:
        SearchRequest.model_validate({"query": "x", "explain": "yes"})
    as_fastapi = [{**e, "loc": ("body", *e["loc"])} for e in err.value.errors()]  # FastAPI's locations
    assert validation_error(as_fastapi)[:2] == (422, "invalid_field")


def test_search_explains_every_shard_and_gives_snippets(backend: InProcessBackend, serve_index: Path) -> None:
    from starlette.testclient import TestClient

    with TestClient(create_app(backend)) as client:  # type: ignore[arg-type]
        plain = client.post("/search", json={"query": "rocket orbit", "k": 5}).json()
        assert "shard_scores" not in plain["trace"].get("extra", {})
        assert all("snippet" not in h for h in plain["hits"])
        got = client.post("/search", json={"query": "rocket orbit", "k": 5, "route": "cori@2", "explain": True,
                                           "snippets": True}).json()
        bad = client.post("/search", json={"query": "rocket orbit", "explain": 1})
        assert bad.status_code == 422 and bad.json()["error"] == "invalid_field"
    scores = got["trace"]["extra"]["shard_scores"]
    n = backend.index.n_shards
    assert len(scores) == n
    # the searched shards are the router's two best, and the selected-shard scores agree
    assert sorted(got["trace"]["shards"]) == sorted(sorted(range(n), key=lambda s: (-scores[s], s))[:2])
    assert got["trace"]["extra"]["router_scores"] == {str(s): scores[s] for s in got["trace"]["shards"]}
    want = expected(serve_index, "rocket orbit", "cori@2", 5)
    assert scores == pytest.approx(want.trace.extra["shard_scores"])
    for hit in got["hits"]:
        text = " ".join(backend.doc_text(hit["doc_id"]).split())
        assert hit["snippet"] and text.startswith(hit["snippet"].rstrip("…").rstrip())


def test_routers_without_scores_explain_none(backend: InProcessBackend) -> None:
    from starlette.testclient import TestClient

    with TestClient(create_app(backend)) as client:  # type: ignore[arg-type]
        got = client.post("/search", json={"query": "planet", "route": "random@2", "explain": True}).json()
    assert got["trace"]["extra"]["shard_scores"] is None and len(got["trace"]["shards"]) == 2


# ---------------------------------------------------------------------- in a real browser
def check_typing(chromium: str, url: str, index: Path, default_route: str) -> None:
    """In chromium at ``url`` (a server's page over ``index``): type queries, check the hits and
    the routing chart against in-process search; a bad route is reported, not a broken page."""
    n = SelectiveSearcher.open(index).index.n_shards
    with Browser(chromium) as browser:
        browser.goto(url)
        # the server's default route is shown once /info answered
        assert default_route in browser.wait_for("document.getElementById('route').placeholder")
        browser.evaluate("document.getElementById('q').focus()")
        browser.type_text("rocket orbit")
        browser.press_enter()  # keyboard submit
        browser.wait_for("document.body.dataset.state === 'done'")
        rows, bars, stages = _read(browser)
        check_page(rows, bars, expected(index, "rocket orbit", default_route, 10), n)
        assert {"route", "search", "merge"} <= set(stages)
        assert browser.evaluate("location.search") == "?q=rocket+orbit&k=10"  # the query is in the URL
        marks = browser.evaluate("[...document.querySelectorAll('#chart .bar .mark')].map(e => e.textContent)")
        assert marks == ["✓"] * len(expected(index, "rocket orbit", default_route, 10).trace.shards)

        # another route and k, typed too: Tab from the query box reaches k, then the route
        browser.evaluate("document.getElementById('q').select()")
        browser.type_text("stock market bank")
        browser.press_tab()
        browser.evaluate("document.activeElement.select()")
        browser.type_text("5")
        browser.press_tab()
        assert browser.evaluate("document.activeElement.id") == "route"
        browser.type_text("cori@3")
        browser.press_enter()
        browser.wait_for("document.getElementById('hits').querySelectorAll('tbody tr').length === 5 && "
                         "document.body.dataset.state === 'done'")
        rows, bars, _ = _read(browser)
        check_page(rows, bars, expected(index, "stock market bank", "cori@3", 5), n)
        # text from the server is text: a snippet is shown as stored, in a table cell
        cell = browser.evaluate("document.querySelector('#hits tbody tr td:nth-child(3)').textContent")
        text = " ".join(SelectiveSearcher.open(index).index.doc(rows[0]["data-doc-id"])["contents"].split())
        assert cell and text.startswith(cell.rstrip("…").rstrip())

        # a bad route is reported in the status line, not as a broken page
        browser.evaluate("document.getElementById('route').value = 'nosuchrouter@2'")
        browser.evaluate("document.getElementById('search-form').requestSubmit()")
        status = browser.wait_for("document.getElementById('status').classList.contains('error') && "
                                  "document.getElementById('status').textContent")
        assert "422" in status


def check_url_query(chromium: str, url: str, index: Path) -> None:
    """``/?q=...&route=...&k=...`` runs the query on load: the DOM chromium dumps shows its answer."""
    page = PageParser(dump_dom(chromium, f"{url}?q={quote('gene protein study')}&route=centroid%404&k=7"))
    n = SelectiveSearcher.open(index).index.n_shards
    check_page(page.rows, page.bars, expected(index, "gene protein study", "centroid@4", 7), n)
    assert {"route", "search", "merge"} <= set(page.stages)


def test_typing_a_query_shows_the_hits_and_the_routing_chart(chromium: str, server: BackgroundServer,
                                                             serve_index: Path) -> None:
    check_typing(chromium, server.url + "/", serve_index, DEFAULT_ROUTE)


def test_a_query_in_the_url_runs_on_load(chromium: str, server: BackgroundServer, serve_index: Path) -> None:
    check_url_query(chromium, server.url + "/", serve_index)


def _read(browser: Browser) -> tuple[list[dict[str, str]], list[dict[str, str]], list[str]]:
    """The hits rows, chart bars and stage names on the page, as their ``data-*`` attributes."""
    data = browser.evaluate("""({
        rows: [...document.querySelectorAll('#hits tbody tr')].map(e => ({...e.dataset})),
        bars: [...document.querySelectorAll('#chart g.bar')].map(e => ({...e.dataset})),
        stages: [...document.querySelectorAll('#stage-list li')].map(e => e.dataset.stage)})""")
    def attrs(items: list[dict[str, str]]) -> list[dict[str, str]]:  # dataset keys as data-* attributes
        return [{"data-" + re.sub(r"[A-Z]", lambda m: "-" + m.group().lower(), k): v for k, v in d.items()}
                for d in items]
    return attrs(data["rows"]), attrs(data["bars"]), list(data["stages"])
