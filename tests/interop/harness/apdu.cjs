// An APDU transport for Ledger's ApduDevice whose device lives in pytest: each command APDU
// is emitted as an {"event": "apdu"} line and its response comes back with the
// "apduResponse" op. pytest answers with ledgersync's emulator of the Ledger Sync app.
"use strict";
const Transport = require("@ledgerhq/hw-transport").default;

class BridgeTransport extends Transport {
  constructor(emit) {
    super();
    this.emitMessage = emit;
    this.waiting = new Map();
    this.nextSeq = 1;
  }

  exchange(apdu) {
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      this.emitMessage({ event: "apdu", seq, apdu: Buffer.from(apdu).toString("hex") });
    });
  }

  respond(seq, responseHex) {
    const waiter = this.waiting.get(seq);
    if (!waiter) throw new Error(`no APDU ${seq} is waiting for a response`);
    this.waiting.delete(seq);
    waiter.resolve(Buffer.from(responseHex, "hex"));
  }

  async close() {}
}

module.exports = { BridgeTransport };
