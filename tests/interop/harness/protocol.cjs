// Stateless operations on Ledger's protocol library, for byte-level interop tests that need
// no server: build and extend trustchains with Ledger's SoftwareDevice, resolve and read keys
// with Ledger's resolver, Ledger's user-data and Cloud Sync ciphers, and the exact login bodies
// Ledger's SDK posts (its own code, fed a recorded challenge instead of the network).
"use strict";
const { hw, SDK, makeCipher, qrcode, qrcipher } = require("./ledger.cjs");
const { SoftwareDeviceProvider, keypair } = require("./device.cjs");
const { BridgeTransport } = require("./apdu.cjs");

const { crypto, StreamTree, SoftwareDevice, DerivationPath, Permissions } = hw;

const NOWHERE = "http://127.0.0.1:9";

function softwareDevice(privateKeyHex) {
  return new SoftwareDevice(keypair(privateKeyHex));
}

function treeOf(streams) {
  const record = Array.isArray(streams)
    ? Object.fromEntries(streams.map((hex, i) => [String(i), hex]))
    : streams;
  return StreamTree.deserialize(record);
}

function rootIdOf(tree) {
  return "00" + crypto.to_hex(tree.getRoot().getRootHash());
}

function offlineSdk() {
  return new SDK(
    { applicationId: 16, name: "offline", apiBaseUrl: NOWHERE },
    { clearJwt() {} },
  );
}

// The APDU bridge of this process (see apdu.cjs), created on first use.
let bridge = null;
function apduTransport() {
  if (!bridge) bridge = new BridgeTransport(message => module.exports.emit(message));
  return bridge;
}
function apduDevice() {
  return hw.device.apdu(apduTransport());
}

function apduResponse({ seq, response }) {
  bridge.respond(seq, response);
  return null;
}

/**
 * A trustchain built by a device: Seed, then members shared on `path`, optionally closed.
 * The device is Ledger's SoftwareDevice with `devicePrivateKey`, or with `apdu: true` Ledger's
 * ApduDevice talking to the device pytest serves over the APDU bridge.
 */
async function createTrustchain({
  devicePrivateKey,
  apdu = false,
  members = [],
  path = "m/0'/16'/0'",
  close = false,
  topic,
}) {
  const device = apdu ? apduDevice() : softwareDevice(devicePrivateKey);
  let tree = await StreamTree.createNewTree(device, {
    topic: topic === undefined ? undefined : crypto.from_hex(topic),
  });
  for (const member of members) {
    tree = await tree.share(
      path,
      device,
      crypto.from_hex(member.pubkey),
      member.name,
      member.permissions ?? Permissions.OWNER,
    );
  }
  if (close) tree = await tree.close(path, device);
  return { rootId: rootIdOf(tree), streams: tree.serialize() };
}

/** One more block on `path` of a tree built elsewhere, signed by `signerPrivateKey`. */
async function extendTrustchain({ streams, signerPrivateKey, path, addMember, close = false }) {
  let tree = treeOf(streams);
  const device = softwareDevice(signerPrivateKey);
  if (addMember) {
    tree = await tree.share(
      path,
      device,
      crypto.from_hex(addMember.pubkey),
      addMember.name,
      addMember.permissions ?? Permissions.OWNER,
    );
  }
  if (close) tree = await tree.close(path, device);
  const child = tree.getChild(path);
  await child.resolve();
  return { rootId: rootIdOf(tree), streams: tree.serialize() };
}

/**
 * Resolve every stream with Ledger's resolver, and read the key of `path` for each reader as
 * Ledger's SDK does (first 32 bytes of SoftwareDevice.readKey), or the error it gets.
 */
async function resolveTrustchain({ streams, readers = [], path = "m/0'/16'/0'" }) {
  const tree = treeOf(streams);
  const resolved = [];
  for (const [streamPath] of Object.entries(tree.serialize())) {
    const stream = tree.getChild(streamPath === "m/" ? [] : streamPath);
    const r = await stream.resolve();
    resolved.push({
      path: streamPath,
      blocks: stream.blocks.length,
      members: r.getMembers().map(m => crypto.to_hex(m)),
      membersData: r.getMembersData(),
      keyHolders: r.getMembers().filter(m => r.ownsKey(m)).map(m => crypto.to_hex(m)),
      groupKey: crypto.to_hex(r.getGroupPublicKey()),
    });
  }
  const keys = {};
  for (const reader of readers) {
    const kp = keypair(reader);
    const pub = crypto.to_hex(kp.publicKey);
    try {
      const xpriv = await new SoftwareDevice(kp).readKey(tree, DerivationPath.toIndexArray(path));
      keys[pub] = { key: crypto.to_hex(xpriv.slice(0, 32)), xpriv: crypto.to_hex(xpriv) };
    } catch (error) {
      keys[pub] = { error: String(error.message || error) };
    }
  }
  return {
    rootId: rootIdOf(tree),
    applicationPath: tree.getApplicationRootPath(16),
    streams: resolved,
    keys,
  };
}

async function encryptUserData({ key, data }) {
  const out = await offlineSdk().encryptUserData(
    { rootId: "", walletSyncEncryptionKey: key, applicationPath: "" },
    crypto.from_hex(data),
  );
  return crypto.to_hex(out);
}

async function decryptUserData({ key, data }) {
  const out = await offlineSdk().decryptUserData(
    { rootId: "", walletSyncEncryptionKey: key, applicationPath: "" },
    crypto.from_hex(data),
  );
  return crypto.to_hex(out);
}

/** live-wallet's Cloud Sync cipher: JSON → pako deflate → encryptUserData → base64. */
async function cloudEncrypt({ key, document }) {
  const trustchain = { rootId: "", walletSyncEncryptionKey: key, applicationPath: "" };
  return makeCipher(offlineSdk()).encrypt(trustchain, document);
}

async function cloudDecrypt({ key, payload }) {
  const trustchain = { rootId: "", walletSyncEncryptionKey: key, applicationPath: "" };
  return makeCipher(offlineSdk()).decrypt(trustchain, payload);
}

/** A stand-in for Ledger's API client that serves one challenge and records the login. */
function recordingApi(challenge) {
  const posted = [];
  return {
    posted,
    api: {
      getAuthenticationChallenge: async () => challenge,
      postChallengeResponse: async body => {
        posted.push(body);
        return { accessToken: "recorded", permissions: {} };
      },
      refreshAuth: async jwt => jwt,
    },
  };
}

/** The body Ledger's SDK posts to /v1/authenticate for a member login (its own code path). */
async function memberLoginBody({ challenge, creds, rootId }) {
  const sdk = offlineSdk();
  const { api, posted } = recordingApi(challenge);
  sdk.api = api;
  const trustchain = { rootId, walletSyncEncryptionKey: "", applicationPath: "m/0'/16'/0'" };
  await sdk.withAuth(trustchain, creds, async () => null, "no-cache", true);
  return posted[0];
}

/** The body the harness's software device posts to /v1/authenticate for a device login. */
async function deviceLoginBody({ challenge, devicePrivateKey, attestationPrivateKey }) {
  const provider = new SoftwareDeviceProvider(NOWHERE, {
    devicePrivateKey,
    attestationPrivateKey,
  });
  const { api, posted } = recordingApi(challenge);
  provider.api = api;
  await provider.withJwt("software-device", async () => null, "no-cache");
  return posted[0];
}

/** Ledger's ApduDevice GET_SEED_ID over the bridge, as Ledger's HWDeviceProvider calls it. */
async function apduGetSeedId({ tlv }) {
  const result = await apduDevice().getSeedId(crypto.from_hex(tlv));
  return {
    publicKey: crypto.to_hex(result.pubkeyCredential.publicKey),
    signature: crypto.to_hex(result.signature),
    attestation: crypto.to_hex(result.attestationResult),
    attestationPublicKey: crypto.to_hex(result.attestationPubkeyCredential.publicKey),
  };
}

/** Ledger's QR pairing cipher with the ECDH session key of `ownPrivateKey` and `peerPublicKey`. */
function qrSessionCipher(ownPrivateKey, peerPublicKey) {
  const session = crypto.ecdh(keypair(ownPrivateKey), crypto.from_hex(peerPublicKey));
  return qrcipher.makeMessageCipher(qrcipher.makeCipher(session));
}

async function qrEncrypt({ ownPrivateKey, peerPublicKey, payload }) {
  return qrSessionCipher(ownPrivateKey, peerPublicKey).encryptMessagePayload(payload);
}

async function qrDecrypt({ ownPrivateKey, peerPublicKey, message }) {
  return qrSessionCipher(ownPrivateKey, peerPublicKey).decryptMessage(message);
}

async function isOldBase64Import({ text }) {
  return qrcode.isOldBase64Import(text);
}

/** What Ledger's challenge parser makes of a challenge TLV. */
async function parseChallenge({ tlv }) {
  const [challenge] = hw.Challenge.fromBytes(crypto.from_hex(tlv));
  return {
    json: challenge.toJSON(),
    hash: crypto.to_hex(crypto.hash(challenge.getUnsignedTLV())),
    reencoded: crypto.to_hex(challenge.toBytes()),
  };
}

module.exports = {
  apduTransport,
  emit: () => {
    throw new Error("protocol.emit is set by instance.cjs");
  },
  apduResponse,
  apduGetSeedId,
  createTrustchain,
  extendTrustchain,
  resolveTrustchain,
  encryptUserData,
  decryptUserData,
  cloudEncrypt,
  cloudDecrypt,
  memberLoginBody,
  deviceLoginBody,
  parseChallenge,
  qrEncrypt,
  qrDecrypt,
  isOldBase64Import,
};
