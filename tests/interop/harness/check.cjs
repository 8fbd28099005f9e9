// Loads every module of Ledger's packages that the harness uses (run by install.sh).
"use strict";
const modules = require("./ledger.cjs");
for (const [name, value] of Object.entries(modules)) {
  if (value === undefined || value === null) {
    throw new Error(`tests/interop: ${name} did not load`);
  }
}
// Ledger's wallet-sync code, behind the harness's stand-in for liveqr/cross.
const walletsync = require("./walletsync.cjs");
if (typeof walletsync.root.diffLocalToDistant !== "function") {
  throw new Error("tests/interop: live-wallet's walletsync root did not load");
}
