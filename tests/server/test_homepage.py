"""The pages at ``/`` and ``/api``, as a person sees them: loaded in real headless Chromium
(tests/server/browser.py) from a real ``ledgersync serve``, after their scripts ran; and,
over plain HTTP, their security headers, their escaping and the JSON 404 elsewhere."""

from __future__ import annotations

import fnmatch
import json
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import ledgersync
from ledgersync import __version__
from ledgersync.server.homepage import ASSETS
from ledgersync.testing import EmbeddedPostgres, LocalServer

from .browser import Browser


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser() as started:
        yield started


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_the_home_page_says_what_the_server_is(browser: Browser, local_server: LocalServer) -> None:
    browser.open(local_server.url + "/")
    assert browser.text("#version") == __version__
    assert browser.text("#health").startswith("healthy")
    # the stylesheet came from the package, under the page's Content-Security-Policy
    weight = browser.script("return getComputedStyle(document.getElementById('health')).fontWeight")
    assert weight == "700"
    settings = browser.text("#ledger-live-settings")
    assert settings.splitlines() == [
        f"TRUSTCHAIN_API_PROD={local_server.url}",
        f"CLOUD_SYNC_API_PROD={local_server.url}",
    ]
    assert f'TrustchainSDK("{local_server.url}", name="my-app")' in browser.text("#sdk-settings")
    endpoints = browser.text("#endpoints")
    for line in ("PUT /v1/trustchain/{trustchain_id}/commands", "WEBSOCKET /v1/qr"):
        assert line in endpoints
    assert "GET /atomic/v1/{slug}" in endpoints
    browser.click("#api-link")
    assert browser.script("return location.pathname") == "/api"


def test_the_home_page_says_when_the_database_is_gone(browser: Browser) -> None:
    with EmbeddedPostgres() as cluster, LocalServer(database=cluster.create_database()) as server:
        cluster.stop()  # the server stays up, its database does not answer
        browser.open(server.url + "/")
        health = browser.text("#health")
        assert fetch(server.url + "/_health")[0] == 503
    assert health.startswith("unhealthy: the database does not answer")
    assert browser.script("return getComputedStyle(document.getElementById('health')).color") == (
        "rgb(176, 0, 32)"  # .unhealthy in ledgersync.css
    )


def test_the_api_reference_renders_the_document_and_tries_requests(
    browser: Browser, local_server: LocalServer
) -> None:
    status, _, body = fetch(local_server.url + "/openapi.json")
    assert status == 200
    document = json.loads(body)
    operations = [(path, verb) for path, item in document["paths"].items() for verb in item]

    browser.open(local_server.url + "/api")
    rendered = browser.find("#operations[data-operations]")  # set once the script has rendered
    count = browser.command("GET", f"/element/{rendered}/attribute/data-operations")
    assert int(count) == len(operations)
    assert browser.text("#api-version") == __version__
    heading = browser.text('article[data-path="/v1/trustchain/{trustchain_id}/commands"] h3')
    assert heading.startswith("PUT /v1/trustchain/{trustchain_id}/commands")
    assert "trustchain_id" in browser.text("#getTrustchain table.parameters")

    browser.click("#getInfo button[type=submit]")
    answer = browser.text("#getInfo .answer[data-status]")  # present once the answer came
    assert answer.startswith("200 OK")
    assert '"name": "ledgersync"' in answer

    browser.type("#getStaticAsset input[name=asset]", "missing.js")
    browser.click("#getStaticAsset button[type=submit]")
    answer = browser.text("#getStaticAsset .answer[data-status]")
    assert answer.startswith("404")
    assert "no such file: /static/missing.js" in answer


def test_the_pages_carry_a_content_security_policy(local_server: LocalServer) -> None:
    for path in ("/", "/api", "/static/api.js", "/static/ledgersync.css"):
        status, headers, _ = fetch(local_server.url + path)
        assert status == 200, path
        assert headers["content-security-policy"].startswith("default-src 'self'"), path
        assert headers["x-content-type-options"] == "nosniff"
    assert fetch(local_server.url + "/static/ledgersync.css")[1]["content-type"].startswith(
        "text/css"
    )


def test_other_paths_still_answer_the_json_404(local_server: LocalServer) -> None:
    for path in ("/index.html", "/static/home.html", "/static/", "/api/x"):
        status, headers, body = fetch(local_server.url + path)
        assert status == 404, path
        assert headers["content-type"] == "application/json", path
        assert json.loads(body)["status"] == 404


def test_what_the_page_shows_is_escaped() -> None:
    hostile = '/<script>alert("x")</script>&'
    with LocalServer(public_url="http://127.0.0.1" + hostile) as server:
        status, _, body = fetch(server.url + "/")
    page = body.decode()
    assert status == 200
    assert "<script>" not in page
    assert "/&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page


def test_the_page_files_ship_as_package_data() -> None:
    package = Path(ledgersync.__file__).parent
    pyproject = tomllib.loads((package.parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["ledgersync"]
    static = sorted(package.glob("server/static/*"))
    assert {path.name for path in static} >= {*ASSETS, "home.html", "api.html"}
    for path in static:  # pip installs them (the container image has no source tree)
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative
