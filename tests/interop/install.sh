#!/usr/bin/env bash
# Installs Ledger's published JavaScript Ledger Sync packages into tests/interop/node_modules.
#
#   @ledgerhq/hw-ledger-key-ring-protocol 0.10.7  (npm ci, from package-lock.json)
#   @ledgerhq/ledger-key-ring-protocol    0.15.2  (npm pack tarball, verified, unpacked)
#   @ledgerhq/live-wallet                 0.27.4  (npm pack tarball, verified, unpacked)
#
# The last two cannot be installed by npm: they pin transitive versions that the registry does
# not have. Their runtime dependencies are listed in package.json instead, and their tarballs
# are unpacked after `npm ci` (which would delete them). See README.md, "Interoperability".
#
# Idempotent: a stamp records what was installed; a second run with nothing changed is instant.
# Without node/npm it prints how to install Node.js and exits 0 so that the rest of the test
# suite still runs: the interop tests themselves then fail with the same message.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

NODE_HELP="Node.js >= 18 with npm is required for the interoperability tests (tests/interop).
Install it, e.g. 'apt-get install nodejs npm' (Debian/Ubuntu), 'brew install node' (macOS)
or from https://nodejs.org/, then run 'make test' again."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "tests/interop/install.sh: node or npm not found; the interop tests will fail." >&2
    echo "$NODE_HELP" >&2
    exit 0
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 18 ]; then
    echo "tests/interop/install.sh: node $(node --version) is too old." >&2
    echo "$NODE_HELP" >&2
    exit 1
fi

# name version sha512-integrity (as `npm view <name>@<version> dist.integrity` prints it)
TARBALLS=(
    "@ledgerhq/ledger-key-ring-protocol 0.15.2 sha512-d0yDKlGlOW157AQIYMdm+CeHXa7NUODryfKE5k2uJNVFgutRfw6boK79bOSxaYObuuFjbxRWNO0wyX5CZr4Vjg=="
    "@ledgerhq/live-wallet 0.27.4 sha512-YxYewitiafmQBXe1Kit31OTTP8scG6MkkuWWUR4ujsnRIrcmNMFjgoKQIDD8/8Q7EbWEcczq5Jq7ePs5JIzOcA=="
)

stamp_file="node_modules/.ledgersync-interop-stamp"
stamp="$(cat package.json package-lock.json install.sh | sha256sum | cut -d' ' -f1) node $(node --version)"
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
    exit 0
fi

echo "tests/interop: installing Ledger's JavaScript packages (npm ci)..." >&2
rm -f "$stamp_file"
npm ci --no-audit --no-fund --loglevel=error >&2

cache="$here/.cache"
mkdir -p "$cache"
for entry in "${TARBALLS[@]}"; do
    read -r name version integrity <<<"$entry"
    file="$cache/$(echo "${name#@}" | tr / -)-$version.tgz"
    if [ ! -f "$file" ]; then
        echo "tests/interop: fetching $name@$version (npm pack)..." >&2
        tmp="$(mktemp -d)"
        (cd "$tmp" && npm pack --silent --loglevel=error "$name@$version" >/dev/null)
        mv "$tmp"/*.tgz "$file"
        rmdir "$tmp"
    fi
    actual="$(node -e 'const c=require("crypto"),f=require("fs");
process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$file")"
    if [ "$actual" != "$integrity" ]; then
        rm -f "$file"
        echo "tests/interop/install.sh: $name@$version tarball integrity mismatch:" >&2
        echo "  expected $integrity" >&2
        echo "  got      $actual" >&2
        exit 1
    fi
    target="node_modules/$name"
    rm -rf "$target"
    mkdir -p "$target"
    tar -xzf "$file" -C "$target" --strip-components=1
done

# Smoke test: every module the harness loads must load.
node "$here/harness/check.cjs" >&2

echo "$stamp" >"$stamp_file"
echo "tests/interop: Ledger's JavaScript packages are installed." >&2
