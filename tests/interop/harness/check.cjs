// Loads every module of Ledger's packages that the harness uses (run by install.sh).
"use strict";
const modules = require("./ledger.cjs");
for (const [name, value] of Object.entries(modules)) {
  if (value === undefined || value === null) {
    throw new Error(`tests/interop: ${name} did not load`);
  }
}
