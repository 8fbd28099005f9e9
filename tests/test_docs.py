"""The documentation stands alone, and its examples run.

* No file of the project cites notes kept outside the repository: the protocol and API
  references are ``docs/protocol.md`` and ``docs/api.md``, and every citation of them names a
  section that exists.
* Every Python block of ``README.md`` and ``docs/*.md`` says whether it runs, on the line
  before it: ``<!-- runnable -->`` (run as is, from the repository's root),
  ``<!-- runnable with a server -->`` (run against a fresh ``ledgersync serve``, whose URL
  replaces ``http://localhost:8080``) or ``<!-- not run: <why> -->``. The runnable ones are
  run here, each in its own process with a temporary home directory.
* What the README says about the command line matches the command line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from ledgersync.cli.main import main
from ledgersync.testing import LocalServer

REPOSITORY = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]
#: The references the project's own files cite.
REFERENCES = ("docs/protocol.md", "docs/api.md")

# --- no citation of notes outside the repository ----------------------------------------------

#: Names of the research notes the references were written from, and of their folder; spelled
#: in pieces so that this file does not match itself.
OUTSIDE_NOTES = re.compile(
    "|".join(
        re.escape(name)
        for name in ("ledger-sync" + "-api", "lkrp" + "-protocol", "shared" + "/docs")
    )
)
#: Numbered references into those notes (a section sign, a numbered pitfall, an appendix).
SECTION_SIGN = "\u00a7"
PITFALL = "pit" + "fall"
NUMBERED = re.compile(
    r"\bspec " + SECTION_SIGN + r"|\bspec " + PITFALL + r"|\b" + PITFALL + r" \d+|App\. A\b"
)
RFC_SECTION = re.compile(r"RFC \d+ $")

#: Server files that still cite the notes: ``src/ledgersync/server/`` is being changed by
#: another engineer; replace their citations with docs/api.md's sections, then shrink this.
SERVER_FILES_STILL_CITING: frozenset[str] = frozenset()
#: The same for ``tests/interop/``.
INTEROP_FILES_STILL_CITING: frozenset[str] = frozenset()

SKIPPED_DIRECTORIES = frozenset(
    {
        ".git",
        ".venv",
        "node_modules",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".hypothesis",
        "build",
        "dist",
    }
)
#: Generated, downloaded or runtime files, not the project's.
SKIPPED_PATHS = frozenset({"data", "tests/interop/.cache"})


def project_files() -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(REPOSITORY):
        here = Path(directory)
        subdirectories[:] = [
            name
            for name in subdirectories
            if name not in SKIPPED_DIRECTORIES
            and not name.endswith(".egg-info")
            and (here / name).relative_to(REPOSITORY).as_posix() not in SKIPPED_PATHS
        ]
        for name in files:
            yield here / name


def text_of(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def outside_citations(text: str) -> list[str]:
    found = [match.group(0) for match in OUTSIDE_NOTES.finditer(text)]
    found += [match.group(0) for match in NUMBERED.finditer(text)]
    for match in re.finditer(SECTION_SIGN, text):
        before = text[max(0, match.start() - 12) : match.start()]
        if not RFC_SECTION.search(before):
            found.append(text[max(0, match.start() - 20) : match.end() + 10])
    return found


def test_no_file_cites_notes_outside_the_repository():
    citing = {}
    for path in project_files():
        text = text_of(path)
        if text is None:
            continue
        found = outside_citations(text)
        if found:
            citing[path.relative_to(REPOSITORY).as_posix()] = found
    allowed = SERVER_FILES_STILL_CITING | INTEROP_FILES_STILL_CITING
    unexpected = {name: found for name, found in citing.items() if name not in allowed}
    assert not unexpected, f"cite docs/protocol.md or docs/api.md instead: {unexpected}"
    # The exceptions are exact: a file fixed is taken off the list.
    assert set(citing) == allowed, f"no longer citing: {sorted(allowed - set(citing))}"


def test_the_citation_finder_finds_citations():
    assert outside_citations("see ``" + "ledger-sync" + "-api.md`` " + SECTION_SIGN + "4.2")
    assert outside_citations("(spec " + SECTION_SIGN + "9.3)")
    assert outside_citations(f"(spec {PITFALL} 12)") and outside_citations(f"({PITFALL} 13: x)")
    assert outside_citations("the " + SECTION_SIGN + "8 envelope")
    assert not outside_citations("Close codes (RFC 6455 " + SECTION_SIGN + "7.4.1).")
    assert not outside_citations('(docs/api.md, "Cloud Sync versioning")')


# --- citations of the references name sections that exist -------------------------------------


def headings(document: Path) -> set[str]:
    found = set()
    fenced = False
    for line in document.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            found.add(match.group(1).strip())
    return found


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", ""))
    return text.replace(" ", "-")


CITATION = re.compile(r"docs/(protocol|api)\.md, \"([^\"]+)\"")
LINK = re.compile(r"\]\(((?:docs/)?(?:protocol|api)\.md)#([\w-]+)\)")


def test_citations_name_sections_that_exist():
    sections = {name: headings(REPOSITORY / name) for name in REFERENCES}
    anchors = {name: {anchor(h) for h in found} for name, found in sections.items()}
    broken = []
    cited = 0
    for path in project_files():
        if path.suffix not in (".py", ".md", ".sh", ".cjs", ".json", ".toml") and path.name != (
            "Makefile"
        ):
            continue
        text = text_of(path) or ""
        where = path.relative_to(REPOSITORY).as_posix()
        for match in CITATION.finditer(" ".join(text.split())):  # citations may wrap lines
            cited += 1
            document, section = f"docs/{match.group(1)}.md", match.group(2)
            if section not in sections[document]:
                broken.append(f"{where}: {document}, {section!r}")
        for match in LINK.finditer(text):
            cited += 1
            target = (path.parent / match.group(1)).resolve().relative_to(REPOSITORY).as_posix()
            if match.group(2) not in anchors.get(target, set()):
                broken.append(f"{where}: {match.group(1)}#{match.group(2)}")
    assert cited > 50
    assert not broken, broken


def test_the_references_have_their_sections():
    protocol, api = (headings(REPOSITORY / name) for name in REFERENCES)
    assert {
        "TLV",
        "Commands",
        "Blocks",
        "Streams and the tree",
        "Resolution",
        "Cryptography",
        "Key wrapping",
        "User data",
        "Challenge and attestation",
        "Device app APDUs",
        "QR pairing messages",
    } <= protocol
    assert {
        "Key Ring API",
        "Error texts",
        "Cloud Sync API",
        "Cloud Sync versioning",
        "Notifications websocket",
        "QR pairing relay",
        "SDK flows",
    } <= api


def test_the_error_texts_clients_depend_on_are_documented():
    from ledgersync.sdk import auth

    api = (REPOSITORY / "docs" / "api.md").read_text(encoding="utf-8")
    for text in (
        auth.EXPIRED,
        auth.REFRESHABLE,
        auth.NO_PERMISSION,
        auth.PATH_MISMATCH,
        *auth.NOT_A_MEMBER,
        "JWT is expired, please call /refresh to refresh it",
        "JWT is expired, please call /challenge to get a new one",
        "No such trustchain",
        "No such endpoint, please check API docs",
        "JWT expired",
    ):
        assert f"`{text}" in api, text


# --- Python blocks ------------------------------------------------------------------------------

RUNNABLE = "<!-- runnable -->"
WITH_SERVER = "<!-- runnable with a server -->"
NOT_RUN = re.compile(r"<!-- not run: .+ -->")
#: The URL examples use; blocks run with a server get the test server's instead.
EXAMPLE_URL = "http://localhost:8080"


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    marker: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(REPOSITORY).as_posix()}:{self.line}"


def python_blocks(document: Path) -> list[Block]:
    lines = document.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        fence = re.match(r"(\s*)```(\S*)", lines[index])
        if not fence:
            index += 1
            continue
        indent, language = fence.groups()
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if language == "python":
            previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
            code = "\n".join(line.removeprefix(indent) for line in lines[index + 1 : end])
            blocks.append(Block(document, index + 1, previous.strip(), code + "\n"))
        index = end + 1
    return blocks


ALL_BLOCKS = [block for document in DOCUMENTS for block in python_blocks(document)]
RUN_ALONE = [block for block in ALL_BLOCKS if block.marker == RUNNABLE]
RUN_WITH_A_SERVER = [block for block in ALL_BLOCKS if block.marker == WITH_SERVER]


def test_every_python_block_says_whether_it_runs():
    undecided = [
        block.name
        for block in ALL_BLOCKS
        if block.marker not in (RUNNABLE, WITH_SERVER) and not NOT_RUN.fullmatch(block.marker)
    ]
    assert not undecided, f"mark these blocks {RUNNABLE}, {WITH_SERVER} or <!-- not run: … -->"
    readme = [block for block in ALL_BLOCKS if block.document.name == "README.md"]
    assert readme and all(block.marker in (RUNNABLE, WITH_SERVER) for block in readme)


def run_block(block: Block, home: Path, url: str | None = None) -> subprocess.CompletedProcess[str]:
    code = block.code if url is None else block.code.replace(EXAMPLE_URL, url)
    environment = {**os.environ, "HOME": str(home), "LEDGERSYNC_HOME": str(home / "ledgersync")}
    environment.pop("LEDGERSYNC_INSTANCE", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"{block.name} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.parametrize("block", RUN_ALONE, ids=lambda block: block.name)
def test_runnable_blocks_run(block, tmp_path):
    run_block(block, tmp_path)


@pytest.fixture(scope="module")
def server():
    with LocalServer() as running:
        yield running


@pytest.mark.parametrize("block", RUN_WITH_A_SERVER, ids=lambda block: block.name)
def test_blocks_run_against_a_server(block, server, tmp_path):
    assert EXAMPLE_URL in block.code
    run_block(block, tmp_path, server.url)


def readme_block(containing: str) -> Block:
    (block,) = [b for b in ALL_BLOCKS if b.document.name == "README.md" and containing in b.code]
    return block


def test_the_readme_protocol_example_reads_the_bundled_trustchain(vectors, tmp_path):
    block = readme_block("examples/trustchain.json")
    assert block.marker == RUNNABLE
    session = vectors["e2e_ledger_live_success_session"]
    key = session["app_stream_index1_rotated"]["derived"]["wallet_sync_encryption_key"]
    assert run_block(block, tmp_path).stdout.splitlines() == [
        session["trustchain_id"],
        "m/0'/16'/1' ['Member 1', 'Member 3']",
        key,
    ]


def code_without_comments(code: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in code.splitlines())


def test_the_sdk_example_keeps_what_an_instance_must_keep():
    """The README says how to persist the member key and the trustchain, in code that runs."""
    code = code_without_comments(readme_block("asyncio.run(main())").code)
    for call in ("me.to_json()", ".trustchain.to_json()", "MemberCredentials.from_json("):
        assert call in code
    assert "Trustchain.from_json(" in code


# --- the README and the command line ------------------------------------------------------------


def commands(group: click.Group, ctx: click.Context, prefix: str = "") -> Iterator[tuple]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from commands(command, click.Context(command, parent=ctx), f"{path} ")
        else:
            yield path, command


def test_the_readme_names_the_commands_that_take_a_device():
    ctx = click.Context(main)
    with_device = {
        path
        for path, command in commands(main, ctx)
        if any("--device" in parameter.opts for parameter in command.params)
    }
    readme = " ".join((REPOSITORY / "README.md").read_text(encoding="utf-8").split())
    sentence = r"The commands that have a device sign or log in, (.+?), take `--device`"
    match = re.search(sentence, readme)
    assert match, "the README says which commands take --device"
    assert set(re.findall(r"`([a-z ]+)`", match.group(1))) == with_device
    assert "Every command that needs a device" not in readme


def test_the_readme_has_device_delete_and_rename():
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    assert "ledgersync device delete" in readme and "ledgersync device rename" in readme


def test_the_database_url_forms_are_documented_as_they_are():
    """``sqlite:///path`` reads as absolute, but three slashes give a relative path."""
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    assert "`sqlite:///path`" not in readme
    assert "`sqlite:///relative/path`" in readme and "`sqlite:////absolute/path`" in readme
