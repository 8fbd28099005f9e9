// Ledger's wallet-sync merge code (@ledgerhq/live-wallet walletsync: root, aggregator, the
// accounts / accountNames / recentAddresses modules, incrementalUpdates and
// createWalletSyncWatchLoop), loaded unchanged, and a Ledger Live-like wallet around it:
// local wallet state, the CloudSyncSDK `saveNewUpdate` and one iteration of the watch loop.
// Ours; no Ledger code is copied here.
//
// Loading. `walletsync/modules/accounts.js` requires `../../liveqr/cross`, whose dependencies
// (bignumber.js, @ledgerhq/ledger-wallet-framework, @ledgerhq/cryptoassets) are not installed
// (see install.sh). That single module is replaced, before root.js is required, by a stand-in
// registered in `require.cache` under its resolved path; everything else is Ledger's.
//
// Resolution context. Ledger Live passes `{getAccountBridge, bridgeCache, blacklistedTokenIds}`;
// here the bridge's `sync()` completes leaving the account as restored from its descriptor
// (no blockchain), and a test can make the import of chosen account ids fail.
"use strict";

const Module = require("module");
const path = require("path");
const { Observable } = require("rxjs");

// -- the stand-in for live-wallet's liveqr/cross -------------------------------------------------

const CROSS = require.resolve("@ledgerhq/live-wallet/lib/liveqr/cross");

// Ledger's account ids are `type:version:currencyId:xpubOrAddress:derivationMode[:...]`; its
// decoder refuses fewer parts, which makes such an import fail. The stand-in does the same.
function xpubOrAddressOf(id) {
  if (typeof id !== "string") throw new Error("account id is not a string");
  const parts = id.split(":");
  if (parts.length < 5) throw new Error(`account id ${JSON.stringify(id)} has too few parts`);
  return parts[3];
}

// The account Ledger's accountDataToAccount restores from exported account data, reduced to
// what the wallet-sync modules and this harness read (no balances, operations or currency data).
function accountDataToAccount(data) {
  const xpubOrAddress = xpubOrAddressOf(data.id);
  const account = {
    type: "Account",
    id: data.id,
    currency: { type: "CryptoCurrency", id: data.currencyId },
    freshAddress: data.freshAddress || xpubOrAddress,
    freshAddressPath: "",
    seedIdentifier: data.seedIdentifier,
    derivationMode: data.derivationMode,
    index: data.index,
    xpub: "",
    used: false,
    balance: String(data.balance ?? "0"),
    spendableBalance: String(data.balance ?? "0"),
    operationsCount: 0,
    operations: [],
    pendingOperations: [],
    subAccounts: [],
    blockHeight: 0,
    lastSyncDate: new Date(0).toISOString(),
  };
  const accountUserData = { id: data.id, name: data.name || "", starredIds: [] };
  return [account, accountUserData];
}

function accountToAccountData(account, { name } = {}) {
  return {
    id: account.id,
    name: name || "",
    seedIdentifier: account.seedIdentifier,
    derivationMode: account.derivationMode,
    freshAddress: account.freshAddress,
    currencyId: account.currency.id,
    index: account.index,
    balance: String(account.balance ?? "0"),
  };
}

const crossStandIn = { __esModule: true, accountDataToAccount, accountToAccountData };

function installCrossStandIn() {
  const cached = require.cache[CROSS];
  if (cached) {
    if (cached.exports === crossStandIn) return;
    throw new Error("live-wallet's liveqr/cross was loaded before the harness's stand-in");
  }
  const standIn = new Module(CROSS, module);
  standIn.filename = CROSS;
  standIn.paths = Module._nodeModulePaths(path.dirname(CROSS));
  standIn.exports = crossStandIn;
  standIn.loaded = true;
  require.cache[CROSS] = standIn;
}

installCrossStandIn();

// Ledger's code, unchanged.
const root = require("@ledgerhq/live-wallet/lib/walletsync/root").default;
const { createWalletSyncWatchLoop } = require(
  "@ledgerhq/live-wallet/lib/walletsync/createWalletSyncWatchLoop",
);
const { makeSaveNewUpdate, makeLocalIncrementalUpdate } = require(
  "@ledgerhq/live-wallet/lib/walletsync/incrementalUpdates",
);
const { shouldRetryImportAccount } = require(
  "@ledgerhq/live-wallet/lib/walletsync/modules/accounts",
);

// -- the resolution context -----------------------------------------------------------------------

// Account ids whose import fails: id -> {name, message}.
function makeContext(importFailures) {
  const bridge = {
    sync(account) {
      return new Observable(subscriber => {
        const failure = importFailures.get(account.id);
        if (failure) {
          const error = new Error(failure.message);
          error.name = failure.name;
          subscriber.error(error);
          return;
        }
        subscriber.next(synced => synced); // an updater that changes nothing
        subscriber.complete();
      });
    },
  };
  return {
    getAccountBridge: () => bridge,
    bridgeCache: {
      prepareCurrency: async () => undefined,
      hydrateCurrency: async () => undefined,
    },
    blacklistedTokenIds: [],
  };
}

// -- the wallet -----------------------------------------------------------------------------------

// Ledger Live's recent addresses store keeps at most 12 addresses a currency.
const RECENT_ADDRESSES_LIMIT = 12;
// setTimeout's largest delay: the watch loop's next polling never comes within a round.
const NEVER = 2 ** 31 - 1;

function descriptorOf(account) {
  return {
    id: account.id,
    currencyId: account.currency.id,
    freshAddress: account.freshAddress,
    seedIdentifier: account.seedIdentifier,
    derivationMode: account.derivationMode,
    index: account.index,
  };
}

/**
 * A Ledger Live-like wallet. `host` holds the wallet-sync state `host.ws = {data, version}` (the
 * latest distant state and its version, as Ledger Live's `walletSyncState`) and the Cloud Sync
 * SDK `host.cloud` built with `saveNewUpdate` below.
 *
 * `accountNamesUpdate`: how an incoming update's account names reach the local names.
 *   "merge" (default): Ledger Live's `setAccountNames` (BULK_SET_ACCOUNT_NAMES merges the
 *     incoming names into the local ones; a name removed elsewhere is kept).
 *   "replace": the modules' own result (`applyUpdate` replaces all names).
 */
class Wallet {
  constructor(host, { accountNamesUpdate = "merge" } = {}) {
    if (!["merge", "replace"].includes(accountNamesUpdate)) {
      throw new Error(`unknown accountNamesUpdate ${JSON.stringify(accountNamesUpdate)}`);
    }
    this.host = host;
    this.accountNamesUpdate = accountNamesUpdate;
    this.accounts = [];
    this.nonImportedAccountInfos = [];
    this.accountNames = new Map();
    this.recentAddresses = {};
    this.importFailures = new Map();
    this.ctx = makeContext(this.importFailures);
    this.pushedCount = 0;

    const getState = () => this;
    const localStateSelector = () => this.localState();
    const saveUpdate = (data, version, newLocalState) =>
      this.saveUpdate(data, version, newLocalState);
    this.ledgerSaveNewUpdate = makeSaveNewUpdate({
      ctx: this.ctx,
      getState,
      latestDistantStateSelector: () => this.host.ws.data,
      latestDistantVersionSelector: () => this.host.ws.version,
      localStateSelector,
      saveUpdate,
    });
    this.localIncrementUpdate = makeLocalIncrementalUpdate({
      ctx: this.ctx,
      getState,
      latestWalletStateSelector: () => this.host.ws,
      localStateSelector,
      saveUpdate,
    });
  }

  // Ledger Live's localStateSelector.
  localState() {
    return {
      accounts: { list: this.accounts, nonImportedAccountInfos: this.nonImportedAccountInfos },
      accountNames: this.accountNames,
      recentAddresses: this.recentAddresses,
    };
  }

  // Ledger Live's `save`: walletSyncUpdate, then the local state if the update changed it.
  async saveUpdate(data, version, newLocalState) {
    this.host.ws = { data, version };
    if (!newLocalState) return;
    this.nonImportedAccountInfos = newLocalState.accounts.nonImportedAccountInfos;
    if (this.accountNamesUpdate === "merge") {
      const names = new Map(this.accountNames);
      for (const [id, name] of newLocalState.accountNames) names.set(id, name);
      this.accountNames = names;
    } else {
      this.accountNames = new Map(newLocalState.accountNames);
    }
    this.recentAddresses = { ...newLocalState.recentAddresses };
    this.accounts = newLocalState.accounts.list;
  }

  // CloudSyncSDK's saveNewUpdate: Ledger's makeSaveNewUpdate over this wallet.
  async saveNewUpdate(event) {
    if (event.type === "pushed-data") this.pushedCount++;
    await this.ledgerSaveNewUpdate(event);
  }

  // -- local edits, as Ledger Live's stores make them --

  addAccount(descriptor) {
    if (this.accounts.some(a => a.id === descriptor.id)) return;
    const [account] = accountDataToAccount({ ...descriptor, balance: "0", name: "" });
    this.accounts = [...this.accounts, account];
  }

  removeAccount(id) {
    this.accounts = this.accounts.filter(a => a.id !== id);
  }

  rename(id, name) {
    const names = new Map(this.accountNames);
    if (!name) names.delete(id);
    else names.set(id, name);
    this.accountNames = names;
  }

  addRecentAddress(currencyId, address, lastUsed = Date.now()) {
    const addresses = [...(this.recentAddresses[currencyId] || [])];
    const found = addresses.findIndex(entry => entry.address === address);
    if (found !== -1) addresses.splice(found, 1);
    else if (addresses.length >= RECENT_ADDRESSES_LIMIT) addresses.pop();
    addresses.unshift({ address, lastUsed });
    this.recentAddresses = { ...this.recentAddresses, [currencyId]: addresses };
  }

  setImportFailures(failures) {
    this.importFailures.clear();
    for (const { id, name = "ImportFailed", message } of failures) {
      this.importFailures.set(id, { name, message: message || `the import of ${id} fails` });
    }
  }

  // -- sync --

  diff() {
    return root.diffLocalToDistant(this.localState(), this.host.ws.data);
  }

  /**
   * One iteration of Ledger's createWalletSyncWatchLoop: pull, the local incremental update,
   * diffLocalToDistant, push of nextState if it has changes. Errors reject (the loop itself
   * hands TrustchainEjected/TrustchainOutdated to onTrustchainRefreshNeeded, others to onError).
   */
  round(trustchain, memberCredentials) {
    const cloud = this.host.cloud;
    return new Promise((resolve, reject) => {
      let failure = null;
      let diff = null;
      let attempted = false;
      let pushed = false;
      const walletSyncSdk = {
        pull: async (...args) => {
          try {
            return await cloud.pull(...args);
          } catch (error) {
            failure = error;
            throw error;
          }
        },
        push: async (...args) => {
          attempted = true;
          const before = this.pushedCount;
          try {
            await cloud.push(...args);
          } catch (error) {
            failure = error;
            throw error;
          }
          pushed = this.pushedCount > before;
        },
        listenNotifications: (...args) => cloud.listenNotifications(...args),
      };
      const walletsync = {
        ...root,
        diffLocalToDistant: (local, latest) => (diff = root.diffLocalToDistant(local, latest)),
      };
      let started = false;
      let loop = null;
      const finish = () => {
        loop.unsubscribe();
        if (!started) reject(new Error("the wallet-sync loop ended without polling"));
        else if (failure) reject(failure);
        else {
          resolve({
            pushed,
            outOfSync: attempted && !pushed,
            hasChanges: diff ? diff.hasChanges : false,
            nextState: diff ? diff.nextState : null,
            version: this.host.ws.version,
          });
        }
      };
      loop = createWalletSyncWatchLoop({
        watchConfig: { notificationsEnabled: false, initialTimeout: 1, pollingInterval: NEVER },
        walletsync,
        walletSyncSdk,
        trustchain,
        memberCredentials,
        setVisualPending: pending => {
          if (!pending) finish(); // the loop's `finally`: the iteration is over
        },
        onStartPolling: () => {
          started = true;
        },
        onTrustchainRefreshNeeded: async () => undefined, // `failure` holds Ledger's error
        onError: error => {
          failure = failure || error;
        },
        getState: () => this,
        localStateSelector: () => this.localState(),
        latestDistantStateSelector: () => this.host.ws.data,
        localIncrementUpdate: this.localIncrementUpdate,
      });
    });
  }

  state() {
    return {
      accounts: this.accounts.map(descriptorOf),
      nonImportedAccountInfos: this.nonImportedAccountInfos,
      accountNames: Object.fromEntries(this.accountNames),
      recentAddresses: this.recentAddresses,
      latest: this.host.ws.data,
      version: this.host.ws.version,
    };
  }
}

/** root.schema.safeParse; `unknownKeys`: top-level keys no module knows (kept by the diff). */
function validate(data) {
  const result = root.schema.safeParse(data);
  const known = Object.keys(root.schema.shape);
  const unknownKeys =
    data && typeof data === "object" && !Array.isArray(data)
      ? Object.keys(data).filter(k => !known.includes(k))
      : [];
  return {
    success: result.success,
    issues: result.success ? [] : JSON.parse(JSON.stringify(result.error.issues)),
    parsed: result.success ? result.data : null,
    unknownKeys,
  };
}

module.exports = {
  root,
  createWalletSyncWatchLoop,
  makeSaveNewUpdate,
  makeLocalIncrementalUpdate,
  shouldRetryImportAccount,
  accountDataToAccount,
  makeContext,
  Wallet,
  validate,
  RECENT_ADDRESSES_LIMIT,
};
