// One Ledger Live-like instance built from Ledger's published JavaScript packages, driven by
// pytest over stdin/stdout with JSON lines (ours; no Ledger code is copied here).
//
//   request   {"id": 1, "op": "getOrCreateTrustchain", "args": {...}}
//   response  {"id": 1, "ok": true, "result": ...}
//             {"id": 1, "ok": false, "error": {"name": "TrustchainEjected", "message": "..."}}
//   event     {"event": "qrDigits", ...}           (unsolicited, e.g. during QR pairing)
//
// Requests run concurrently (a QR pairing op stays pending while others are served). Errors
// keep the class names of Ledger's errors so that the tests assert on them.
"use strict";

// Anything printed by a library must not corrupt the protocol on stdout.
console.log = console.info = console.debug = (...args) => console.error(...args);

const readline = require("readline");
const ledger = require("./ledger.cjs");
const protocol = require("./protocol.cjs");
const { SoftwareDeviceProvider } = require("./device.cjs");

const { hw, SDK, HWDeviceProvider, CloudSyncSDK, trustchainLifecycle, liveSlug, qrcode, z } =
  ledger;

const { crypto } = hw;

// Ledger's wallet-sync code and the wallet around it, loaded when first used (see walletsync.cjs).
let walletsyncModule = null;
function walletsync() {
  if (!walletsyncModule) walletsyncModule = require("./walletsync.cjs");
  return walletsyncModule;
}

function emit(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}
protocol.emit = emit;
ledger.socketListeners.add(({ url }) => emit({ event: "socketOpen", url }));

function serializeError(error) {
  if (error instanceof Error) {
    const out = { name: error.name, message: error.message };
    if (error.status !== undefined) out.status = error.status;
    if (error.stack) out.stack = error.stack;
    return out;
  }
  return { name: typeof error, message: String(error) };
}

const OWNER = 0xffffffff;

function walletOf(instance) {
  if (!instance.wallet) throw new Error("no wallet: configure with wallet: true");
  return instance.wallet;
}

class Instance {
  constructor() {
    this.config = null;
    this.creds = null;
    this.trustchain = null;
    // Ledger Live's wallet-sync state: the last known distant document and its version.
    this.ws = { data: null, version: 0 };
    // A Ledger Live-like wallet (walletsync.cjs) when configured with `wallet`.
    this.wallet = null;
    this.pendingDigits = null;
    this.subscriptions = new Map();
    this.nextSubscription = 1;
  }

  configure({
    trustchainApiBaseUrl,
    cloudSyncApiBaseUrl,
    name,
    devicePrivateKey,
    attestationPrivateKey,
    applicationId = 16,
    lifecycle = true,
    apdu = false,
    wallet = null,
  }) {
    this.config = { trustchainApiBaseUrl, cloudSyncApiBaseUrl, name, applicationId };
    // Either Ledger's SoftwareDevice behind our provider, or Ledger's own HWDeviceProvider
    // and ApduDevice speaking APDUs to the device pytest serves (see apdu.cjs).
    this.provider = apdu
      ? new HWDeviceProvider(trustchainApiBaseUrl, () => run => run(protocol.apduTransport()))
      : new SoftwareDeviceProvider(trustchainApiBaseUrl, {
          devicePrivateKey,
          attestationPrivateKey,
        });
    const hooks =
      lifecycle && cloudSyncApiBaseUrl
        ? trustchainLifecycle({
            cloudSyncApiBaseUrl,
            getCurrentWSState: () => this.ws,
          })
        : undefined;
    this.sdk = new SDK(
      { applicationId, name, apiBaseUrl: trustchainApiBaseUrl },
      this.provider,
      hooks,
    );
    if (wallet && !cloudSyncApiBaseUrl) throw new Error("a wallet needs cloudSyncApiBaseUrl");
    if (cloudSyncApiBaseUrl && wallet) {
      // A Ledger Live-like wallet (walletsync.cjs): Ledger Live's CloudSyncSDK, with the
      // wallet-sync root schema and Ledger's makeSaveNewUpdate merging into the local state.
      const { Wallet, root } = walletsync();
      this.wallet = new Wallet(this, wallet === true ? {} : wallet);
      this.cloud = new CloudSyncSDK({
        apiBaseUrl: cloudSyncApiBaseUrl,
        slug: liveSlug,
        schema: root.schema,
        trustchainSdk: this.sdk,
        getCurrentVersion: () => this.ws.version,
        saveNewUpdate: async event => {
          await this.wallet.saveNewUpdate(event);
          emit({ event: "cloudUpdate", update: event });
        },
      });
    } else if (cloudSyncApiBaseUrl) {
      this.cloud = new CloudSyncSDK({
        apiBaseUrl: cloudSyncApiBaseUrl,
        slug: liveSlug,
        // Any JSON object: the suite is about the protocol, not Ledger Live's account modules.
        schema: z.object({}).passthrough(),
        trustchainSdk: this.sdk,
        getCurrentVersion: () => this.ws.version,
        saveNewUpdate: async event => {
          if (event.type === "deleted-data") this.ws = { data: null, version: 0 };
          else this.ws = { data: event.data, version: event.version };
          emit({ event: "cloudUpdate", update: event });
        },
      });
    }
    return null;
  }

  setDevice({ devicePrivateKey }) {
    this.provider.setDeviceKey(devicePrivateKey);
    return null;
  }

  async initMemberCredentials() {
    this.creds = await this.sdk.initMemberCredentials();
    return this.creds;
  }

  getState() {
    return { creds: this.creds, trustchain: this.trustchain, ws: this.ws };
  }

  setState({ creds, trustchain, ws }) {
    if (creds !== undefined) this.creds = creds;
    if (trustchain !== undefined) this.trustchain = trustchain;
    if (ws !== undefined) this.ws = ws;
    return null;
  }

  async getOrCreateTrustchain({ passCurrent = false } = {}) {
    const result = await this.sdk.getOrCreateTrustchain(
      "software-device",
      this.creds,
      undefined,
      undefined,
      passCurrent && this.trustchain ? this.trustchain : undefined,
    );
    this.trustchain = result.trustchain;
    return result;
  }

  async restoreTrustchain() {
    this.trustchain = await this.sdk.restoreTrustchain(this.trustchain, this.creds);
    return this.trustchain;
  }

  getMembers() {
    return this.sdk.getMembers(this.trustchain, this.creds);
  }

  async addMember({ id, name, permissions = OWNER }) {
    await this.sdk.addMember(this.trustchain, this.creds, { id, name, permissions });
    return null;
  }

  async removeMember({ id, name = "", permissions = OWNER }) {
    this.trustchain = await this.sdk.removeMember(
      "software-device",
      this.trustchain,
      this.creds,
      { id, name, permissions },
    );
    return this.trustchain;
  }

  async destroyTrustchain() {
    await this.sdk.destroyTrustchain(this.trustchain, this.creds);
    this.trustchain = null;
    return null;
  }

  invalidateJwt() {
    this.sdk.invalidateJwt();
    return null;
  }

  async withAuth({ policy = "cache" } = {}) {
    const jwt = await this.sdk.withAuth(this.trustchain, this.creds, j => Promise.resolve(j), policy);
    return jwt;
  }

  deviceJwt() {
    return this.provider.withJwt("software-device", jwt => Promise.resolve(jwt), "cache");
  }

  async encryptUserData({ data }) {
    const out = await this.sdk.encryptUserData(this.trustchain, crypto.from_hex(data));
    return crypto.to_hex(out);
  }

  async decryptUserData({ data }) {
    const out = await this.sdk.decryptUserData(this.trustchain, crypto.from_hex(data));
    return crypto.to_hex(out);
  }

  // Cloud Sync (live-wallet's CloudSyncSDK, slug "live").
  async cloudPush({ data }) {
    await this.cloud.push(this.trustchain, this.creds, data);
    return this.ws;
  }

  async cloudPull() {
    await this.cloud.pull(this.trustchain, this.creds);
    return this.ws;
  }

  async cloudDestroy() {
    await this.cloud.destroy(this.trustchain, this.creds);
    return this.ws;
  }

  cloudListen() {
    const sid = this.nextSubscription++;
    const subscription = this.cloud.listenNotifications(this.trustchain, this.creds).subscribe({
      next: version => emit({ event: "notification", subscription: sid, version }),
      error: error =>
        emit({ event: "notificationError", subscription: sid, error: serializeError(error) }),
      complete: () => emit({ event: "notificationComplete", subscription: sid }),
    });
    this.subscriptions.set(sid, subscription);
    return sid;
  }

  cloudUnlisten({ subscription }) {
    const found = this.subscriptions.get(subscription);
    if (found) found.unsubscribe();
    this.subscriptions.delete(subscription);
    return null;
  }

  // The wallet (configure with `wallet: true` or `wallet: {accountNamesUpdate}`): Ledger
  // Live's local wallet state and wallet sync (see walletsync.cjs). Edits return walletState():
  //   {accounts: [descriptor], nonImportedAccountInfos, accountNames: {id: name},
  //    recentAddresses: {currencyId: [{address, lastUsed}]}, latest: ws.data, version}
  // walletSyncRound() → {pushed, outOfSync, hasChanges, nextState, version}
  // walletDiff() → {hasChanges, nextState}; walletValidate({data}) → {success, issues, parsed,
  // unknownKeys}; walletSetImportFailures({failures: [{id, name?, message?}]}) → null.
  walletAddAccount({ id, currencyId, freshAddress, seedIdentifier, derivationMode, index }) {
    const descriptor = { id, currencyId, freshAddress, seedIdentifier, derivationMode, index };
    walletOf(this).addAccount(descriptor);
    return this.wallet.state();
  }

  walletRemoveAccount({ id }) {
    walletOf(this).removeAccount(id);
    return this.wallet.state();
  }

  walletRename({ id, name = null }) {
    walletOf(this).rename(id, name);
    return this.wallet.state();
  }

  walletAddRecentAddress({ currencyId, address, lastUsed }) {
    walletOf(this).addRecentAddress(currencyId, address, lastUsed ?? Date.now());
    return this.wallet.state();
  }

  walletSetImportFailures({ failures = [] }) {
    walletOf(this).setImportFailures(failures);
    return null;
  }

  walletSyncRound() {
    return walletOf(this).round(this.trustchain, this.creds);
  }

  walletDiff() {
    return walletOf(this).diff();
  }

  walletState() {
    return walletOf(this).state();
  }

  walletValidate({ data }) {
    return walletsync().validate(data);
  }

  // QR pairing: this instance shows the QR code (host) or scans it (candidate).
  addMemberForQr() {
    return async member => {
      await this.sdk.addMember(this.trustchain, this.creds, member);
      return this.trustchain;
    };
  }

  async qrHost() {
    const result = await qrcode.createQRCodeHostInstance({
      trustchainApiBaseUrl: this.config.trustchainApiBaseUrl,
      onDisplayQRCode: url => emit({ event: "qrUrl", url }),
      onDisplayDigits: digits => emit({ event: "qrDigits", digits }),
      addMember: this.addMemberForQr(),
      memberCredentials: this.creds,
      memberName: this.config.name,
      initialTrustchainId: this.trustchain ? this.trustchain.rootId : undefined,
    });
    if (result) this.trustchain = result;
    return result || null;
  }

  async qrCandidate({ url }) {
    const result = await qrcode.createQRCodeCandidateInstance({
      memberCredentials: this.creds,
      memberName: this.config.name,
      addMember: this.addMemberForQr(),
      initialTrustchainId: this.trustchain ? this.trustchain.rootId : undefined,
      scannedUrl: url,
      onRequestQRCodeInput: (config, callback) => {
        this.pendingDigits = callback;
        emit({ event: "qrDigitsRequested", config });
      },
    });
    if (result) this.trustchain = result;
    return result || null;
  }

  qrEnterDigits({ digits }) {
    const callback = this.pendingDigits;
    if (!callback) throw new Error("no QR code digits were requested");
    this.pendingDigits = null;
    callback(digits);
    return null;
  }
}

const instance = new Instance();

async function dispatch(op, args) {
  if (op.startsWith("protocol.")) {
    const fn = protocol[op.slice("protocol.".length)];
    if (typeof fn !== "function") throw new Error(`unknown op ${op}`);
    return fn(args || {});
  }
  if (op === "ping") return "pong";
  const fn = Instance.prototype[op];
  if (op === "constructor" || typeof fn !== "function") throw new Error(`unknown op ${op}`);
  return fn.call(instance, args || {});
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on("line", line => {
  if (!line.trim()) return;
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    emit({ event: "protocolError", error: serializeError(error) });
    return;
  }
  const { id, op, args } = request;
  Promise.resolve()
    .then(() => dispatch(op, args))
    .then(
      result => emit({ id, ok: true, result: result === undefined ? null : result }),
      error => emit({ id, ok: false, error: serializeError(error) }),
    );
});
rl.on("close", () => process.exit(0));
emit({ event: "ready", versions: ledger.versions });
