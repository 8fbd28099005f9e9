// The modules of Ledger's published packages that the harness uses, loaded in one place.
// Deep imports: the packages' roots pull dependencies (coin modules, transports) that are not
// installed here (see install.sh).
"use strict";

// Ledger's QR and notification code opens its websockets with `new (require("isomorphic-ws"))`.
// The class it gets is ours: Node's `ws` WebSocket, telling the harness when a socket opens
// (Ledger's QR host shows its code before its socket is open; tests wait for the open).
const BaseWebSocket = require("isomorphic-ws");
const socketListeners = new Set();
class ObservedWebSocket extends BaseWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("open", () => {
      for (const listener of socketListeners) listener({ url: String(args[0]) });
    });
  }
}
require.cache[require.resolve("isomorphic-ws")].exports = ObservedWebSocket;

const hw = require("@ledgerhq/hw-ledger-key-ring-protocol");
const { SDK } = require("@ledgerhq/ledger-key-ring-protocol/sdk");
const { genericWithJWT } = require("@ledgerhq/ledger-key-ring-protocol/auth");
const { HWDeviceProvider } = require("@ledgerhq/ledger-key-ring-protocol/HWDeviceProvider");
const getApi = require("@ledgerhq/ledger-key-ring-protocol/api").default;
const errors = require("@ledgerhq/ledger-key-ring-protocol/errors");
const qrcode = require("@ledgerhq/ledger-key-ring-protocol/qrcode/index");
const qrcipher = require("@ledgerhq/ledger-key-ring-protocol/qrcode/cipher");
const { CloudSyncSDK } = require("@ledgerhq/live-wallet/cloudsync/index");
const { makeCipher } = require("@ledgerhq/live-wallet/cloudsync/cipher");
const { trustchainLifecycle, liveSlug } = require(
  "@ledgerhq/live-wallet/walletsync/trustchainLifecyle",
);
const { z } = require("zod");
const fs = require("fs");
const path = require("path");

const PACKAGES = [
  "@ledgerhq/hw-ledger-key-ring-protocol",
  "@ledgerhq/ledger-key-ring-protocol",
  "@ledgerhq/live-wallet",
];
const versions = Object.fromEntries(
  PACKAGES.map(name => {
    const file = path.join(__dirname, "..", "node_modules", name, "package.json");
    return [name, JSON.parse(fs.readFileSync(file, "utf8")).version];
  }),
);

module.exports = {
  hw,
  SDK,
  genericWithJWT,
  HWDeviceProvider,
  getApi,
  errors,
  qrcode,
  qrcipher,
  CloudSyncSDK,
  makeCipher,
  trustchainLifecycle,
  liveSlug,
  z,
  versions,
  socketListeners,
};
