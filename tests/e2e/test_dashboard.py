"""The browser page in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

The page is served by our app hosting the demo server; the browser opens the live view over
EventSource and runs searches with ``fetch`` + its own SSE parser, as a browser client would,
including resuming after the server cuts the stream and CORS from another origin.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from mcp_sse import ServerConfig, create_app
from mcp_sse.demo.corpus import Corpus
from mcp_sse.demo.server import build_demo_server
from tests.servers import run_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
QUERY = "needle"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for i in range(40):
        (root / f"page_{i:02d}.md").write_text(f"# Page {i}\n" + ("The needle is here.\n" if i % 9 == 4 else "Hay.\n"))
    (root / "code.py").write_text("def f():\n    return 1\n")
    return root


def expected_partials(root: Path) -> list[str]:
    """The "found ..." lines the demo logs for QUERY, in scan order: what the page must list."""
    corpus = Corpus.build(root)
    hits = {hit.path: hit for hit in corpus.search("doc", QUERY, 5 * 5)}
    return [f"found {path}: {hits[path].snippet}" for path in corpus.files["doc"] if path in hits]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                # Let a page from a public origin reach loopback, so the server (not the browser) decides.
                "--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessSendPreflights,BlockInsecurePrivateNetworkRequests",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], "the page raised JavaScript errors"


def demo_app(root: Path, **config: object) -> object:
    settings = ServerConfig(dashboard=True, keepalive_interval=1.0, retry_ms=50, **config)  # type: ignore[arg-type]
    return create_app(build_demo_server(root, scan_delay_ms=20), settings)


@pytest.fixture(scope="module")
def server(corpus: Path) -> Iterator[str]:
    with run_server(demo_app(corpus)) as url:
        yield url


@pytest.fixture(scope="module")
def cutting_server(corpus: Path) -> Iterator[str]:
    with run_server(demo_app(corpus, drop_every=4)) as url:
        yield url


def open_page(page: Page, url: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("body[data-search-ready='true']")


def run_search(page: Page) -> list[str]:
    """Search QUERY from the page; returns every progress text the page showed along the way."""
    page.evaluate(
        """() => {
            window.progressSeen = [];
            const text = document.getElementById("progress-text");
            new MutationObserver(() => window.progressSeen.push(text.textContent))
                .observe(text, {childList: true, characterData: true, subtree: true});
        }"""
    )
    page.select_option("#tool", "search_docs")
    page.fill("#query", QUERY)
    page.fill("#limit", "5")
    page.click("#search-button")
    page.wait_for_selector("body[data-search-done='1']")
    seen: list[str] = page.evaluate("window.progressSeen")
    return seen


def test_live_view_shows_the_pages_own_session_over_eventsource(page: Page, server: str) -> None:
    open_page(page, server)
    page.wait_for_function("document.getElementById('status').textContent === 'live'")
    # The page's own MCP session appears in the next stats event.
    page.wait_for_function("Number(document.getElementById('sessions-open').textContent) >= 1")
    row = page.locator("#session-rows tr").first
    assert row.locator("td").nth(1).inner_text() == "streamable-http"
    assert row.locator("td").nth(2).inner_text() == "2025-11-25"
    shown_id = row.locator("td").first.inner_text()
    assert shown_id.endswith("…") and len(shown_id) == 9, "ids are cut short: the page must not leak a usable one"
    assert page.inner_text("#mcp-session").endswith("…"), "the page read Mcp-Session-Id from the response"


def test_search_streams_progress_and_partial_results_then_the_ranking(page: Page, server: str, corpus: Path) -> None:
    open_page(page, server)
    progress = run_search(page)
    files = len(Corpus.build(corpus).files["doc"])
    assert len(set(progress)) > 3, "progress was shown as it streamed, not only at the end"
    assert progress[-1] == f"scanned {files} of {files} files"
    assert page.evaluate("[document.getElementById('progress').value, document.getElementById('progress').max]") == [
        files,
        files,
    ]
    assert page.locator("#partials li").all_inner_texts() == expected_partials(corpus)
    result = page.inner_text("#result")
    assert result.startswith(f"4 best of 4 matching doc files for '{QUERY}':"), result
    assert "page_04.md" in result
    assert page.inner_text("#search-status") == "", "nothing was cut, so nothing was resumed"


def test_search_resumes_when_the_server_cuts_the_stream(page: Page, cutting_server: str, corpus: Path) -> None:
    open_page(page, cutting_server)
    run_search(page)
    assert "resumed" in page.inner_text("#search-status")
    # Exactly once and in order, across every cut.
    assert page.locator("#partials li").all_inner_texts() == expected_partials(corpus)
    assert page.inner_text("#result").startswith("4 best of 4 matching doc files")


def test_another_local_origin_gets_cors_and_the_session_header(page: Page, server: str) -> None:
    # The page comes from http://localhost:PORT; the MCP endpoint is http://127.0.0.1:PORT: cross-origin.
    port = server.rsplit(":", 1)[1]
    open_page(page, f"http://localhost:{port}")
    outcome = page.evaluate(
        """async (url) => {
            const client = new McpClient(url);
            await client.connect();
            const { tools } = await client.request("tools/list", {});
            return { session: client.session, tools: tools.map((t) => t.name) };
        }""",
        server + "/mcp",
    )
    assert outcome["session"], "Mcp-Session-Id must be exposed to cross-origin scripts"
    assert "search_docs" in outcome["tools"], "the preflight allowed the MCP headers"


def test_a_foreign_origin_is_refused(page: Page, server: str) -> None:
    # A page from a site that is not local: the browser sends its Origin and the server must say no.
    page.route("http://evil.example/", lambda route: route.fulfill(body="<html><body>evil</body></html>"))
    page.goto("http://evil.example/")
    outcome = page.evaluate(
        """async (url) => {
            try {
                await fetch(url, {method: "POST", headers: {"Content-Type": "application/json",
                    "Accept": "application/json, text/event-stream"},
                    body: JSON.stringify({jsonrpc: "2.0", id: 1, method: "initialize", params: {
                        protocolVersion: "2025-11-25", capabilities: {}, clientInfo: {name: "evil", version: "1"}}})});
                return "answered";
            } catch (error) {
                return "refused";
            }
        }""",
        server + "/mcp",
    )
    assert outcome == "refused"
    metrics = page.request.get(server + "/metrics").text()
    assert 'mcp_sse_rejects_total{reason="Forbidden",status="403"}' in metrics


def test_the_page_is_off_unless_asked_for(corpus: Path) -> None:
    app = create_app(build_demo_server(corpus, scan_delay_ms=0), ServerConfig())
    with run_server(app) as url:
        for path in ("/", "/dashboard", "/dashboard/events"):
            response = httpx2.get(url + path)
            assert response.status_code == 404, path
            assert response.json()["error"]["message"].startswith("Not Found")


def test_the_live_stream_ends_when_the_server_begins_to_shut_down(corpus: Path) -> None:
    app = create_app(build_demo_server(corpus, scan_delay_ms=0), ServerConfig(dashboard=True))
    with run_server(app) as url, httpx2.stream("GET", url + "/dashboard/events", timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        chunks = stream.iter_raw()
        assert b"event: stats" in next(chunks)
        app.begin_shutdown()
        rest = b""
        for chunk in chunks:  # ends when the server ends the response
            rest += chunk
            assert rest.count(b"event: stats") <= 2, "the live view went on after shutdown began"
