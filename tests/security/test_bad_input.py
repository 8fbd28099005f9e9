"""Bad input on every HTTP route, on both backends: malformed and mistyped bodies, huge and
deeply nested JSON, hostile ids, paths and queries, garbage blocks, broken headers and raw
requests no HTTP client would send.

The rule for every answer (:func:`~.probes.refusal_problem`): never a 5xx, every 4xx is the
server's JSON error; input that cannot be valid is refused (4xx, never a 2xx); the server
logs no internal error (``server_log``) and still answers ``/_info`` afterwards.

The probes of each route come from :data:`PROFILES`, keyed like the route table;
``test_openapi.py`` checks that every route of the table has one.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx2
import pytest

from ledgersync.protocol import KeyPair
from ledgersync.protocol.builders import seed_block

from ..support import DEADLINE
from ..support.frames import RawWebSocket
from ..support.http import raw_exchange, request_bytes, response_problem
from ..support.keyring import (
    Trustchain,
    bearer,
    device_answer,
    get_challenge,
    login_device,
    stream_hex,
)
from ..support.logs import LogRecords
from ..support.payloads import b64url_json
from ..support.servers import RunningServer
from ..support.world import SWEEP_LIMITS, World

ANY = "any"  # the input may be valid: it must not cause a 5xx (and a 4xx must be JSON)
REFUSED = "refused"  # the input cannot be valid: it must be refused with a JSON 4xx


@dataclass
class Probe:
    label: str
    method: str
    url: str
    expect: str = REFUSED
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    params: list[tuple[str, str]] | None = None


Profile = Callable[[World], list[Probe]]


def bad_authorizations(token: str) -> list[tuple[str, dict[str, str]]]:
    """Authorization headers that must all be refused (401)."""
    header, claims, signature = token.split(".")
    return [
        ("no Authorization", {}),
        ("bearer alone", {"Authorization": "Bearer"}),
        ("basic", {"Authorization": "Basic dXNlcjpwYXNz"}),
        ("one word", {"Authorization": "Bearer garbage"}),
        ("three empty parts", {"Authorization": "Bearer .."}),
        ("bad base64", {"Authorization": "Bearer !!!.***.???"}),
        ("header is a list", {"Authorization": f"Bearer {b64url_json([])}.{claims}.{signature}"}),
        ("claims are a list", {"Authorization": f"Bearer {header}.{b64url_json([1])}.{signature}"}),
        ("claims not JSON", {"Authorization": f"Bearer {header}.{b64url_json('{x')}.{signature}"}),
        ("nested claims", {"Authorization": f"Bearer {header}.{b64url_json('[' * 5000)}.x"}),
        ("4 parts", {"Authorization": f"Bearer {token}.{signature}"}),
        ("token and junk", {"Authorization": f"Bearer {token} junk"}),
        ("truncated", {"Authorization": f"Bearer {token[:-10]}"}),
        ("long", {"Authorization": "Bearer " + "a" * 6000}),
        ("latin-1", {"Authorization": "Bearer é" + token}),
    ]


def auth_probes(method: str, url: str, token: str, **extra: object) -> list[Probe]:
    return [
        Probe(f"{method} {url}: {label}", method, url, headers=headers, **extra)  # type: ignore[arg-type]
        for label, headers in bad_authorizations(token)
    ]


#: JSON (or not) that no route accepts as its body.
GENERIC_BODIES: list[tuple[str, bytes]] = [
    ("empty body", b""),
    ("not JSON", b"{"),
    ("truncated JSON", b'{"a": [1, 2'),
    ("trailing garbage", b"{} x"),
    ("null", b"null"),
    ("true", b"true"),
    ("a number", b"1"),
    ("a big float", b"1.5e308"),
    ("an infinite float", b"1e999999"),
    ("NaN", b"NaN"),
    ("-Infinity", b"-Infinity"),
    ("an empty array", b"[]"),
    ("an empty object", b"{}"),
    ("deeply nested arrays", b"[" * 100_000 + b"]" * 100_000),
    ("deeply nested objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    ("invalid UTF-8", b'"\xff\xfe\xfd"'),
    ("UTF-16", '{"a": "b"}'.encode("utf-16")),
    ("a byte-order mark", b'\xef\xbb\xbf{"a": 1}'),
    ("an escaped NUL", b'"\\u0000"'),
    ("many keys", json.dumps({str(i): i for i in range(20_000)}).encode()),
    ("a long string", json.dumps("z" * 200_000).encode()),
    ("a long array", json.dumps([0] * 100_000).encode()),
]


def body_probes(
    method: str, url: str, token: str | None, shaped: list[tuple[str, object]], **extra: object
) -> list[Probe]:
    headers = bearer(token) if token else {}
    headers["Content-Type"] = "application/json"
    probes = [
        Probe(f"{method} {url}: {label}", method, url, headers=headers, content=body, **extra)  # type: ignore[arg-type]
        for label, body in GENERIC_BODIES
    ]
    probes += [
        Probe(
            f"{method} {url}: {label}",
            method,
            url,
            headers=headers,
            content=json.dumps(body).encode(),
            **extra,  # type: ignore[arg-type]
        )
        for label, body in shaped
    ]
    too_large = b'"' + b"0" * (1 << 20) + b'"'
    probes.append(
        Probe(
            f"{method} {url}: over the body limit",
            method,
            url,
            headers=headers,
            content=too_large,
            **extra,
        )  # type: ignore[arg-type]
    )
    probes.append(
        Probe(
            f"{method} {url}: form encoded",
            method,
            url,
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
            content=b"a=1&b=%00",
            **extra,  # type: ignore[arg-type]
        )
    )
    return probes


def garbage_streams(world: World) -> list[tuple[str, object]]:
    """Hex-encoded block streams that are not valid (as JSON strings)."""
    other = Trustchain.new(KeyPair.generate())
    root = stream_hex(other.streams["m/"])
    derived_elsewhere = stream_hex([other.derive(0, KeyPair.generate())])
    mine = world.trustchain
    derived = Trustchain(mine.device, mine.root, mine.root_xpriv, {"m/": [mine.root]})
    next_stream = stream_hex([derived.derive(1, KeyPair.generate())])
    flipped = bytearray(bytes.fromhex(next_stream))
    flipped[len(flipped) // 2] ^= 0x01
    return [
        ("an empty stream", ""),
        ("odd-length hex", "abc"),
        ("not hex", "zz" * 40),
        ("hex with NUL", "00\u000000"),
        ("random bytes", os.urandom(600).hex()),
        ("a zero block", "00" * 200),
        ("a truncated block", root[:-2]),
        ("a block and junk", root + "ff"),
        ("a flipped bit", flipped.hex()),
        ("another trustchain's root", root),
        ("another trustchain's derivation", derived_elsewhere),
        ("65 blocks", root * 65),
        ("a number", 12),
        ("a list of hex", [root]),
        ("an object", {"blocks": root}),
    ]


def commands_bodies(world: World) -> list[tuple[str, object]]:
    path = world.path
    block = os.urandom(300).hex()
    return [
        ("path is a number", {"path": 1, "blocks": [block]}),
        ("blocks is a string", {"path": path, "blocks": block}),
        ("blocks is empty", {"path": path, "blocks": []}),
        ("blocks hold numbers", {"path": path, "blocks": [1, 2]}),
        ("blocks hold objects", {"path": path, "blocks": [{}]}),
        ("garbage blocks", {"path": path, "blocks": [block]}),
        ("not hex", {"path": path, "blocks": ["zz"]}),
        ("too many blocks", {"path": path, "blocks": [block] * 65}),
        ("10,000 empty blocks", {"path": path, "blocks": [""] * 10_000}),
        ("no path", {"blocks": [block]}),
        ("path traversal", {"path": "m/../../etc/passwd", "blocks": [block]}),
        ("a huge index", {"path": "m/99999999999999999999'", "blocks": [block]}),
        ("a negative index", {"path": "m/-1'", "blocks": [block]}),
        ("a long path", {"path": "m/" + "0'/" * 20_000 + "0'", "blocks": [block]}),
        ("a NUL in the path", {"path": "m/0'\u0000/16'", "blocks": [block]}),
        ("an unknown stream", {"path": "m/0'/16'/7'", "blocks": [block]}),
        ("the root stream", {"path": "m/", "blocks": [block]}),
        ("a non-ASCII path", {"path": "m/０'/16'/0'", "blocks": [block]}),
    ]


def authenticate_bodies(world: World) -> list[tuple[str, object]]:
    answer = device_answer(get_challenge(world.client), KeyPair.generate())
    challenge, signature = answer["challenge"], answer["signature"]

    def with_challenge(**changes: object) -> dict[str, object]:
        return {"challenge": {**challenge, **changes}, "signature": signature}

    def with_signature(**changes: object) -> dict[str, object]:
        return {"challenge": challenge, "signature": {**signature, **changes}}

    credential = signature["credential"]
    return [
        ("no challenge", {"signature": signature}),
        ("no signature", {"challenge": challenge}),
        ("challenge is a string", {"challenge": "x", "signature": signature}),
        ("challenge data is a number", with_challenge(challenge={"data": 1, "expiry": "x"})),
        ("expiry is garbage", with_challenge(challenge={**challenge["challenge"], "expiry": "x"})),
        (
            "expiry is huge",
            with_challenge(challenge={**challenge["challenge"], "expiry": "9" * 40}),
        ),
        ("host is a list", with_challenge(host=["a"])),
        ("a long host", with_challenge(host="h" * 100_000)),
        ("rp is empty", with_challenge(rp=[])),
        ("rp is a dict", with_challenge(rp={"0": 1})),
        ("a huge version", with_challenge(version=2**63)),
        ("a negative version", with_challenge(version=-1)),
        ("protocolVersion is a string", with_challenge(protocolVersion="1.0.0")),
        ("signature is a list", {"challenge": challenge, "signature": []}),
        ("signature not hex", with_signature(signature="zz")),
        ("signature empty", with_signature(signature="")),
        ("signature huge", with_signature(signature="00" * 50_000)),
        ("attestation empty", with_signature(attestation="")),
        ("attestation garbage", with_signature(attestation=os.urandom(90).hex())),
        ("attestation type 02 and junk", with_signature(attestation="02ff" + "41" * 10)),
        ("attestation type 02, long id", with_signature(attestation="02ff" + "30" * 255)),
        ("credential is a string", with_signature(credential="x")),
        (
            "publicKey not a point",
            with_signature(credential={**credential, "publicKey": "02" + "ff" * 32}),
        ),
        ("publicKey huge", with_signature(credential={**credential, "publicKey": "04" * 10_000})),
        ("curveId negative", with_signature(credential={**credential, "curveId": -1})),
        ("curveId huge", with_signature(credential={**credential, "curveId": 2**70})),
        ("version is a float", with_signature(credential={**credential, "version": 0.5})),
    ]


def payload_bodies(world: World) -> list[tuple[str, object]]:
    limit = SWEEP_LIMITS["cloudsync_max_payload_bytes"]
    return [
        ("payload is a number", {"payload": 1}),
        ("payload is null", {"payload": None}),
        ("payload is a list", {"payload": ["a"]}),
        ("payload is an object", {"payload": {}}),
        ("payload missing", {"data": "x"}),
        ("payload over the limit", {"payload": "A" * (limit + 1)}),
        ("payload over the limit in UTF-8", {"payload": "é" * (limit // 2 + 1)}),
        ("payload a list of strings", ["payload", "x"]),
    ]


def hostile_ids(world: World) -> list[str]:
    """Path segments for ``{trustchain_id}`` (already percent-encoded where needed)."""
    return [
        "..",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "00" + "g" * 64,
        "00" + world.trustchain_id[2:].upper(),
        "00" + "ab" * 32,
        world.trustchain_id + "00",
        world.trustchain_id + "%00",
        "%00",
        "%ff%fe",
        "%F0%9F%92%A9",
        "%27%20OR%20%271%27%3D%271",
        "null",
        "-1",
        "0" * 5000,
        "%20",
    ]


def trustchain_profile(
    method: str, suffix: str = "", body: Callable[[World], object] | None = None
) -> Profile:
    def probes(world: World) -> list[Probe]:
        url = f"/v1/trustchain/{world.trustchain_id}{suffix}"
        token = world.device.token
        content = None if body is None else json.dumps(body(world)).encode()
        found = auth_probes(method, url, token, content=content)
        found += [
            Probe(
                f"{method} id {identifier[:40]}",
                method,
                f"/v1/trustchain/{identifier}{suffix}",
                headers=bearer(token),
                content=content,
            )
            for identifier in hostile_ids(world)
        ]
        # someone else's token on this trustchain
        stranger = login_stranger(world)
        found.append(
            Probe(
                f"{method} with a stranger's token",
                method,
                url,
                headers=bearer(stranger),
                content=content,
            )
        )
        if body is not None:
            shaped = commands_bodies(world) if suffix == "/commands" else garbage_streams(world)
            found += body_probes(method, url, token, shaped)
        return found

    return probes


def login_stranger(world: World) -> str:
    """A valid token of a device that owns none of the world's trustchains."""
    return login_device(world.client, KeyPair.generate()).token


def valid_stream(world: World) -> str:
    return stream_hex(Trustchain.new(KeyPair.generate()).streams["m/"])


def commands_body(world: World) -> object:
    return {"path": world.path, "blocks": [os.urandom(200).hex()]}


def seed_profile(world: World) -> list[Probe]:
    token = world.device.token
    found = auth_probes("POST", "/v1/seed", token, content=json.dumps(valid_stream(world)).encode())
    shaped = garbage_streams(world)
    root, _ = seed_block(world.trustchain.device)
    shaped.append(("the existing root again", stream_hex(world.trustchain.streams["m/"])))
    shaped.append(("a second root block", stream_hex([world.trustchain.root, root])))
    found += body_probes("POST", "/v1/seed", token, shaped)
    found.append(
        Probe(
            "POST /v1/seed with a member token",
            "POST",
            "/v1/seed",
            headers=bearer(world.member.token),
            content=json.dumps(valid_stream(world)).encode(),
        )
    )
    return found


def authenticate_profile(world: World) -> list[Probe]:
    return body_probes("POST", "/v1/authenticate", None, authenticate_bodies(world))


def get_profile(url: str) -> Profile:
    def probes(world: World) -> list[Probe]:
        return auth_probes("GET", url, world.device.token)

    return probes


def no_input_profile(url: str) -> Profile:
    """Routes without input: junk query strings and headers change nothing."""

    def probes(world: World) -> list[Probe]:
        return [
            Probe(f"GET {url} junk query", "GET", url, ANY, params=[("x", "\u0000" * 100)] * 50),
            Probe(
                f"GET {url} junk headers",
                "GET",
                url,
                ANY,
                headers={
                    "Authorization": "Bearer x",
                    "Accept": "*/*;q=ä",
                    "X-Forwarded-For": "1.2.3.4, <script>",
                },
            ),
        ]

    return probes


#: Slugs outside ``[A-Za-z0-9._~-]{1,64}`` (``%2e%2e`` is ``..``: a valid, opaque name).
SLUGS = ["a" * 65, "..", "%00", "%C3%BC", "a%20b", "%2F", "a;b", "%ff", "%2e%2e%2f"]


def document_queries(world: World) -> list[tuple[str, list[tuple[str, str]]]]:
    tid, path = world.trustchain_id, world.path
    return [
        ("no query", []),
        ("no path", [("id", tid)]),
        ("an empty path", [("id", tid), ("path", "")]),
        ("a long path", [("id", tid), ("path", "m/" + "0" * 300)]),
        ("a long id", [("id", "0" * 300), ("path", path)]),
        ("two paths", [("id", tid), ("path", path), ("path", path)]),
        ("two ids", [("id", tid), ("id", tid), ("path", path)]),
        ("another trustchain", [("id", "00" + "ab" * 32), ("path", path)]),
        ("another path", [("id", tid), ("path", "m/0'/16'/1'")]),
        ("a NUL in the path", [("id", tid), ("path", path + "\u0000")]),
        ("a NUL in the id", [("id", tid + "\u0000"), ("path", path)]),
        ("a surrogate-looking id", [("id", "%ud800"), ("path", path)]),
        ("an injection", [("id", "' OR 1=1 --"), ("path", "'; DROP TABLE documents; --")]),
    ]


BAD_VERSIONS = [
    "-1",
    "1.0",
    "1e3",
    "0x10",
    "",
    " 1",
    "+1",
    "١",
    "9007199254740992",
    "99999999999999999999999999",
    "NaN",
    "1" * 5000,
]


def atomic_profile(method: str) -> Profile:
    def probes(world: World) -> list[Probe]:
        url = "/atomic/v1/live"
        token = world.member.token
        valid = json.dumps({"payload": "QUJD"}).encode() if method == "POST" else None
        params = world.document(version="1") if method == "POST" else world.document()
        found = auth_probes(method, url, token, content=valid, params=params)
        found += [
            Probe(
                f"{method} {label}",
                method,
                url,
                headers=bearer(token),
                content=valid,
                params=query + ([("version", "1")] if method == "POST" and query else []),
            )
            for label, query in document_queries(world)
        ]
        found += [
            Probe(
                f"{method} slug {slug}",
                method,
                f"/atomic/v1/{slug}",
                headers=bearer(token),
                content=valid,
                params=params,
            )
            for slug in SLUGS
        ]
        if method != "DELETE":
            found += [
                Probe(
                    f"{method} version {version[:20]!r}",
                    method,
                    url,
                    headers=bearer(token),
                    content=valid,
                    params=world.document(version=version),
                )
                for version in BAD_VERSIONS
            ]
        if method == "POST":
            found.append(
                Probe(
                    "POST version 0",
                    "POST",
                    url,
                    headers=bearer(token),
                    content=valid,
                    params=world.document(version="0"),
                )
            )
            found.append(
                Probe(
                    "POST no version",
                    "POST",
                    url,
                    headers=bearer(token),
                    content=valid,
                    params=world.document(),
                )
            )
            found.append(
                Probe(
                    "POST a long client version",
                    "POST",
                    url,
                    content=valid,
                    headers={**bearer(token), "X-Ledger-Client-Version": "v" * 300},
                    params=world.document(version="1"),
                )
            )
            found += body_probes("POST", url, token, payload_bodies(world), params=params)
        # a device token names the trustchain but no member path is needed: still refused
        # for another trustchain's document
        found.append(
            Probe(
                f"{method} with a stranger's token",
                method,
                url,
                headers=bearer(login_stranger(world)),
                content=valid,
                params=params,
            )
        )
        return found

    return probes


def websocket_profile(world: World) -> list[Probe]:
    return []  # swept frame by frame in test_bad_frames.py


#: The probes of each route of the table (``routes.py``), by (path template, method).
def asset_profile(world: World) -> list[Probe]:
    """Names outside the two assets, traversals included: each a JSON 404."""
    names = ["home.html", "API.JS", "..%2f..%2fetc%2fpasswd", "%00", "a" * 300, "%2e%2e"]
    return [Probe(f"GET /static/{name[:20]}", "GET", f"/static/{name}") for name in names]


PROFILES: dict[tuple[str, str], Profile] = {
    ("/", "GET"): no_input_profile("/"),
    ("/api", "GET"): no_input_profile("/api"),
    ("/static/{asset}", "GET"): asset_profile,
    ("/_info", "GET"): no_input_profile("/_info"),
    ("/_health", "GET"): no_input_profile("/_health"),
    ("/openapi.json", "GET"): no_input_profile("/openapi.json"),
    ("/metrics", "GET"): no_input_profile("/metrics"),
    ("/v1/challenge", "GET"): no_input_profile("/v1/challenge"),
    ("/v1/authenticate", "POST"): authenticate_profile,
    ("/v1/refresh", "GET"): get_profile("/v1/refresh"),
    ("/v1/trustchains", "GET"): get_profile("/v1/trustchains"),
    ("/v1/seed", "POST"): seed_profile,
    ("/v1/trustchain/{trustchain_id}", "GET"): trustchain_profile("GET"),
    ("/v1/trustchain/{trustchain_id}", "DELETE"): trustchain_profile("DELETE"),
    ("/v1/trustchain/{trustchain_id}/derivation", "POST"): trustchain_profile(
        "POST", "/derivation", valid_stream
    ),
    ("/v1/trustchain/{trustchain_id}/commands", "PUT"): trustchain_profile(
        "PUT", "/commands", commands_body
    ),
    ("/v1/qr", "WEBSOCKET"): websocket_profile,
    ("/atomic/v1/{slug}", "GET"): atomic_profile("GET"),
    ("/atomic/v1/{slug}", "POST"): atomic_profile("POST"),
    ("/atomic/v1/{slug}", "DELETE"): atomic_profile("DELETE"),
    ("/atomic/v1/{slug}/notifications", "WEBSOCKET"): websocket_profile,
}


def run_probes(world: World, probes: list[Probe]) -> list[str]:
    problems = []
    for probe in probes:
        headers = {name: value.encode("latin-1") for name, value in probe.headers.items()}
        try:
            response = world.client.request(
                probe.method,
                probe.url,
                headers=headers,
                content=probe.content,
                params=probe.params,
            )
        except httpx2.TransportError as exc:
            problems.append(f"{probe.label}: no answer ({type(exc).__name__}: {exc})")
            continue
        problem = response_problem(response)
        if problem is None and probe.expect == REFUSED and response.status_code < 300:
            problem = f"accepted ({response.status_code}): {response.text[:120]}"
        if problem is not None:
            problems.append(f"{probe.label}: {problem}")
    return problems


def assert_still_up(world: World) -> None:
    response = world.client.get("/_info")
    assert response.status_code == 200, response.text
    tree = world.device.tree(world.trustchain_id)  # and the data is still there
    assert tree.status_code == 200, tree.text


@pytest.mark.parametrize(
    "route",
    [key for key in PROFILES if key[1] != "WEBSOCKET"],
    ids=lambda key: f"{key[1]} {key[0]}",
)
def test_every_route_refuses_bad_input(
    world: World, route: tuple[str, str], server_log: LogRecords
) -> None:
    probes = PROFILES[route](world)
    assert probes, "a route without probes"
    problems = run_probes(world, probes)
    assert not problems, f"{len(problems)} of {len(probes)} probes:\n" + "\n".join(problems)
    assert_still_up(world)


# --- defects found by the sweep (each its own test, so that the report names it) -------------


def body_routes(world: World) -> list[tuple[str, str, dict[str, str], list[tuple[str, str]]]]:
    tid = world.trustchain_id
    device, member = bearer(world.device.token), bearer(world.member.token)
    return [
        ("POST", "/v1/authenticate", {}, []),
        ("POST", "/v1/seed", device, []),
        ("POST", f"/v1/trustchain/{tid}/derivation", device, []),
        ("PUT", f"/v1/trustchain/{tid}/commands", device, []),
        ("POST", "/atomic/v1/live", member, world.document(version="1")),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"1" * 4301,
        b'{"challenge": ' + b"9" * 5000 + b"}",
        b'{"payload": "x", "n": -' + b"1" * 100_000 + b"}",
        b"[" + b"1" * 10_000 + b"]",
    ],
    ids=["bare", "in an object", "negative, 100k digits", "in an array"],
)
def test_huge_json_integers_are_refused(world: World, body: bytes, server_log: LogRecords) -> None:
    """Python refuses to convert integers of more than 4300 digits: a 400, not a 500."""
    problems = []
    for method, url, headers, params in body_routes(world):
        response = world.client.request(
            method,
            url,
            content=body,
            params=params,
            headers={**headers, "Content-Type": "application/json"},
        )
        problem = response_problem(response)
        if problem is None and response.status_code < 400:
            problem = f"accepted ({response.status_code})"
        if problem:
            problems.append(f"{method} {url}: {problem}")
    assert not problems, "\n".join(problems)
    assert_still_up(world)


@pytest.mark.parametrize(
    "payload",
    [b'"\\ud800"', b'"abc\\udfff"', b'"\\ud800\\u0041"', b'"a\\u0000b"', b'"\\u0000"'],
    ids=["lone high surrogate", "lone low surrogate", "unpaired", "NUL inside", "only NUL"],
)
def test_cloudsync_payloads_that_are_not_text(
    world: World, payload: bytes, server_log: LogRecords
) -> None:
    """A payload with a lone surrogate or a NUL is refused (400) or stored verbatim (read
    back identical), never a 500."""
    params = world.document(version="1")
    response = world.client.post(
        "/atomic/v1/live",
        params=params,
        content=b'{"payload": ' + payload + b"}",
        headers={**bearer(world.member.token), "Content-Type": "application/json"},
    )
    assert response_problem(response) is None, response_problem(response)
    if response.status_code == 200:
        assert response.json() == {"status": "updated"}
        stored = world.client.get(
            "/atomic/v1/live", params=world.document(), headers=bearer(world.member.token)
        )
        assert stored.status_code == 200
        assert stored.json()["payload"] == json.loads(payload)
    else:
        assert response.status_code == 400
    assert_still_up(world)


# --- raw requests -------------------------------------------------------------------------------

RAW_REQUESTS: list[tuple[str, bytes]] = [
    ("garbage", b"GARBAGE\r\n\r\n"),
    ("binary", os.urandom(512)),
    ("a TLS hello", bytes.fromhex("160301002001000100") + os.urandom(64)),
    ("an HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ("HTTP/9.9", b"GET /_info HTTP/9.9\r\nHost: x\r\n\r\n"),
    ("no version", b"GET /_info\r\n\r\n"),
    (
        "raw non-ASCII path",
        b"GET /v1/trustchain/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ),
    ("encoded non-UTF-8 path", request_bytes("GET", "/v1/trustchain/%ff%fe%00")),
    ("bad percent-encoding", request_bytes("GET", "/atomic/v1/%zz?path=%zz&id=%")),
    ("absolute form", request_bytes("GET", "http://evil.example/v1/trustchains")),
    ("asterisk form", request_bytes("OPTIONS", "*")),
    ("double slashes", request_bytes("GET", "//v1//trustchains")),
    ("dot segments", request_bytes("GET", "/v1/../../../etc/passwd")),
    ("a 100 KB target", request_bytes("GET", "/" + "a" * 100_000)),
    ("a header without colon", b"GET /_info HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"),
    (
        "a NUL in a header",
        b"GET /_info HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n",
    ),
    (
        "an obsolete folded header",
        b"GET /_info HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nConnection: close\r\n\r\n",
    ),
    (
        "Content-Length not a number",
        request_bytes("POST", "/v1/authenticate", headers={"Content-Length": "abc"}, body=b"{}"),
    ),
    (
        "Content-Length negative",
        request_bytes("POST", "/v1/authenticate", headers={"Content-Length": "-5"}, body=b"{}"),
    ),
    (
        "Content-Length huge",
        request_bytes("POST", "/v1/authenticate", headers={"Content-Length": "9" * 30}, body=b"{}"),
    ),
    (
        "two Content-Lengths",
        request_bytes(
            "POST",
            "/v1/authenticate",
            headers={"Content-Length": "2", "content-length": "3"},
            body=b"{}",
        ),
    ),
    (
        "bad chunk size",
        request_bytes(
            "POST",
            "/v1/authenticate",
            headers={"Transfer-Encoding": "chunked"},
            body=b"zz\r\n{}\r\n0\r\n\r\n",
        ),
    ),
    (
        "unknown transfer coding",
        request_bytes(
            "POST",
            "/v1/authenticate",
            headers={"Transfer-Encoding": "gzip, chunked"},
            body=b"2\r\n{}\r\n0\r\n\r\n",
        ),
    ),
    (
        "a 10 MB chunk",
        request_bytes(
            "POST",
            "/v1/authenticate",
            headers={"Transfer-Encoding": "chunked"},
            body=b"A00000\r\n" + b"0" * 4096,
        ),
    ),
    (
        "a NUL in the client version",
        request_bytes(
            "POST",
            "/atomic/v1/live?path=x",
            headers={"X-Ledger-Client-Version": "a\x00b", "Content-Type": "application/json"},
            body=b'{"payload": "x"}',
        ),
    ),
]


@pytest.mark.parametrize("name", [name for name, _ in RAW_REQUESTS])
async def test_raw_requests_are_refused_cleanly(
    world: World, name: str, server_log: LogRecords
) -> None:
    data = dict(RAW_REQUESTS)[name]
    answer = await raw_exchange(world.server.port, data, half_close=False)
    assert answer.problem() is None, answer.problem()
    assert answer.status is None or answer.status < 500, answer.data[:300]
    await asyncio.to_thread(assert_still_up, world)


async def test_no_request_smuggling(world: World, server_log: LogRecords) -> None:
    """Content-Length and Transfer-Encoding together: the request is refused or read one
    way, never both (no second, smuggled request is answered)."""
    smuggled = request_bytes("GET", "/v1/trustchains", headers=bearer(world.device.token))
    body = b"0\r\n\r\n" + smuggled
    data = (
        b"POST /v1/authenticate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + body
    )
    answer = await raw_exchange(world.server.port, data)
    assert answer.data.count(b"HTTP/1.1 ") <= 1, answer.data[:600]
    assert answer.status is None or answer.status < 500, answer.data[:300]
    await asyncio.to_thread(assert_still_up, world)


def test_wrong_methods_are_json_405(world: World, server_log: LogRecords) -> None:
    from .test_openapi import table_operations

    problems = []
    for path, method in table_operations():
        if method == "WEBSOCKET":
            continue
        url = path.replace("{trustchain_id}", world.trustchain_id).replace("{slug}", "live")
        for wrong in ("PATCH", "TRACE", "OPTIONS"):
            response = world.client.request(wrong, url, headers=bearer(world.device.token))
            if response.status_code != 405 or response_problem(response):
                problems.append(f"{wrong} {url}: {response.status_code} {response.text[:80]}")
    assert not problems, "\n".join(problems)


# --- the connection layer -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        request_bytes("GET", "/_info", headers={"X-Big": "a" * 100_000}),
        request_bytes("GET", "/_info", headers={f"X-H{n}": "a" * 20 for n in range(2000)}),
        request_bytes("GET", "/_info?" + "a=1&" * 25_000),
        request_bytes(
            "GET", "/v1/trustchains", headers={"Authorization": "Bearer " + "a" * 100_000}
        ),
    ],
    ids=["one 100 KB header", "2000 headers", "a 100 KB query", "a 100 KB token"],
)
async def test_oversized_request_heads_are_refused(
    world: World, data: bytes, server_log: LogRecords
) -> None:
    answer = await raw_exchange(world.server.port, data, until_status=True)
    assert answer.status in (400, 413, 414, 431), answer.data[:200]
    await asyncio.to_thread(assert_still_up, world)


async def open_quietly(port: int, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def ended(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before it closed the connection (within the deadline)."""
    received = b""
    async with asyncio.timeout(DEADLINE):
        while chunk := await reader.read(65536):
            received += chunk
    return received


async def test_slow_and_idle_connections_are_cut(
    make_server: Callable[..., RunningServer], server_log: LogRecords
) -> None:
    """A connection that never finishes its headers (slowloris), or never sends anything, is
    closed by the server: connections are bounded in time, not only in number."""
    server = make_server(header_timeout=0.5, keep_alive_timeout=0.5)
    silent = [await open_quietly(server.port, b"") for _ in range(3)]
    dripping = [
        await open_quietly(server.port, b"GET /_info HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        for _ in range(3)
    ]
    try:
        answers = await asyncio.gather(*(ended(reader) for reader, _ in silent + dripping))
    finally:
        for _, writer in silent + dripping:
            writer.transport.abort()
    assert all(answer == b"" for answer in answers[:3])  # idle: closed without a word
    for answer in answers[3:]:
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:100]
    response = await asyncio.to_thread(server.client().get, "/_info")
    assert response.status_code == 200


async def test_connections_per_client_are_bounded(
    make_server: Callable[..., RunningServer], server_log: LogRecords
) -> None:
    """One client address holds at most ``max_connections_per_client`` connections. Over the
    limit, an idle one (a keep-alive between requests) is closed for the newcomer; when all
    are busy (here: open websockets), the newcomer is refused with 503."""
    server = make_server(max_connections_per_client=8, header_timeout=60, keep_alive_timeout=60)
    sockets = []
    idle_reader, idle_writer = await open_quietly(
        server.port, b"GET /_info HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    try:
        head = await idle_reader.readuntil(b"\r\n\r\n")  # answered: now an idle keep-alive
        assert head.startswith(b"HTTP/1.1 200"), head
        for _ in range(7):
            socket = RawWebSocket(server.port, f"/v1/qr?host={KeyPair.generate().public_key.hex()}")
            sockets.append(socket)
            assert (await socket.open()).status == 101  # upgraded: busy for as long as it lives
        served = await raw_exchange(server.port, request_bytes("GET", "/_info"))
        assert served.status == 200, served.data[:200]
        await ended(idle_reader)  # the idle one was closed for the newcomer (else: TimeoutError)
        socket = RawWebSocket(server.port, f"/v1/qr?host={KeyPair.generate().public_key.hex()}")
        sockets.append(socket)
        assert (await socket.open()).status == 101  # eight busy connections
        refused = await raw_exchange(server.port, request_bytes("GET", "/_info"))
        assert refused.status == 503 and refused.closed, refused.data[:200]
    finally:
        idle_writer.transport.abort()
        for socket in sockets:
            socket.abort()


async def test_a_client_leaving_mid_body_is_not_a_server_error(
    world: World, server_log: LogRecords
) -> None:
    """The body is announced, partly sent, then the client is gone: nothing to answer, and
    nothing for the operator to worry about (no 500 logged, no traceback)."""
    mark = server_log.mark()
    data = request_bytes(
        "POST", "/v1/authenticate", headers={"Content-Length": "1000"}, body=b'{"challenge": '
    )
    _, writer = await open_quietly(world.server.port, data)
    writer.transport.abort()
    record = await server_log.finished("/v1/authenticate", mark)
    assert record.__dict__["status"] < 500, record.__dict__
    await asyncio.to_thread(assert_still_up, world)
