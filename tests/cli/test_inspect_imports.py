"""``ledgersync inspect`` loads only what it needs (its speed goal counts start-up and imports)."""

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trustchain.json"

#: Packages the command has no use for: the SDK and its HTTP/websocket clients, the server,
#: the wallet, the device layer, and the cryptography package (AES is not needed to verify).
NOT_NEEDED = (
    "ledgersync.sdk",
    "ledgersync.server",
    "ledgersync.wallet",
    "ledgersync.device",
    "httpx2",
    "websockets",
    "starlette",
    "uvicorn",
    "asyncpg",
    "cryptography",
)

PROGRAM = """
import json, sys
from ledgersync.cli.main import main
sys.argv = ["ledgersync", "inspect", sys.argv[1]]
try:
    main()
except SystemExit as exit:
    status = exit.code
print(json.dumps({"status": status, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def test_inspect_imports_neither_sdk_nor_server_nor_cryptography() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["status"] == 0, done.stdout
    assert "Trustchain" in done.stdout
    loaded = [
        module
        for module in report["modules"]
        if any(module == name or module.startswith(name + ".") for name in NOT_NEEDED)
    ]
    assert loaded == []
