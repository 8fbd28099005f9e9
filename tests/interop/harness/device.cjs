// A software "Ledger Sync" device for Ledger's SDK: the object SDK expects in place of its
// HWDeviceProvider (withJwt, withHw, refreshJwt, clearJwt), backed by Ledger's SoftwareDevice.
//
// The device's seed-id key signs blocks and the login challenge. Its logins carry a type 0x00
// attestation like the Ledger Sync app's GET_SEED_ID answer:
//   0x00 ‖ credential(attestation key) ‖ len ‖ DER signature over SHA-256(challengeHash ‖ sig)
// signed with the attestation key given (the app's public TEST key in the tests).
"use strict";
const { hw, genericWithJWT, getApi } = require("./ledger.cjs");

const { crypto, Challenge, PubKeyCredential, SoftwareDevice } = hw;

function credentialOf(publicKey) {
  return new PubKeyCredential({ version: 0, curveId: 0x21, signAlgorithm: 0x01, publicKey });
}

function keypair(privateKeyHex) {
  return crypto.keypairFromSecretKey(crypto.from_hex(privateKeyHex));
}

/** The `signature` object of POST /v1/authenticate for a device login over `challengeTlv`. */
function deviceLoginSignature(challengeTlvHex, deviceKey, attestationKey) {
  const [challenge] = Challenge.fromBytes(crypto.from_hex(challengeTlvHex));
  const hash = crypto.hash(challenge.getUnsignedTLV());
  const signature = crypto.sign(hash, deviceKey);
  const attestationSignature = crypto.sign(
    crypto.hash(new Uint8Array([...hash, ...signature])),
    attestationKey,
  );
  const attestation = new Uint8Array([
    0x00,
    ...credentialOf(attestationKey.publicKey).toBytes(),
    attestationSignature.length,
    ...attestationSignature,
  ]);
  return {
    credential: credentialOf(deviceKey.publicKey).toJSON(),
    signature: crypto.to_hex(signature),
    attestation: crypto.to_hex(attestation),
  };
}

class SoftwareDeviceProvider {
  constructor(apiBaseUrl, { devicePrivateKey, attestationPrivateKey }) {
    this.api = getApi(apiBaseUrl);
    this.jwt = undefined;
    this.deviceKey = keypair(devicePrivateKey);
    this.attestationKey = keypair(attestationPrivateKey);
    this.logins = 0;
  }

  setDeviceKey(devicePrivateKey) {
    this.deviceKey = keypair(devicePrivateKey);
    this.jwt = undefined;
  }

  withJwt(deviceId, job, policy, callbacks) {
    return genericWithJWT(
      jwt => {
        this.jwt = jwt;
        return job(jwt);
      },
      this.jwt,
      () => this.login(),
      jwt => this.api.refreshAuth(jwt),
      policy,
    );
  }

  async withHw(deviceId, job, callbacks) {
    callbacks?.onStartRequestUserInteraction?.();
    try {
      return await job(new SoftwareDevice(this.deviceKey));
    } finally {
      callbacks?.onEndRequestUserInteraction?.();
    }
  }

  async refreshJwt(deviceId, callbacks) {
    this.jwt = await this.withJwt(deviceId, this.api.refreshAuth, "cache", callbacks);
  }

  clearJwt() {
    this.jwt = undefined;
  }

  async login() {
    this.logins += 1;
    const challenge = await this.api.getAuthenticationChallenge();
    return this.api.postChallengeResponse({
      challenge: challenge.json,
      signature: deviceLoginSignature(challenge.tlv, this.deviceKey, this.attestationKey),
    });
  }
}

module.exports = { SoftwareDeviceProvider, deviceLoginSignature, keypair };
