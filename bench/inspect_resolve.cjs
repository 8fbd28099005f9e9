// The JavaScript side of bench/inspect_command.py: Ledger's own resolver on a trustchain file, as a
// whole process. Reads the JSON object GET /v1/trustchain/{id} returns (path → hex), resolves
// every stream with Ledger's StreamTree / Stream.resolve (which verifies every signature), and
// prints how many streams and members it found.
//
// Ledger's packages are not a dependency of the project: they are the ones the interop tests
// install in tests/interop/node_modules (tests/interop/install.sh). This script resolves its
// modules from that directory (createRequire) and imports nothing else from tests/.
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const [, , file] = process.argv;
const nodeModules = path.resolve(__dirname, "..", "tests", "interop", "node_modules");
const requireLedger = createRequire(path.join(nodeModules, "resolve-from-here.js"));
const { StreamTree } = requireLedger("@ledgerhq/hw-ledger-key-ring-protocol");

async function main() {
  const tree = StreamTree.deserialize(JSON.parse(fs.readFileSync(file, "utf8")));
  let streams = 0;
  let members = 0;
  for (const streamPath of Object.keys(tree.serialize())) {
    const resolved = await tree.getChild(streamPath === "m/" ? [] : streamPath).resolve();
    streams += 1;
    members += resolved.getMembers().length;
  }
  console.log(`${streams} streams, ${members} members`);
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
