"""A software device's secrets: its BIP39 seed and the keys the Ledger Sync app derives.

* The seed-id key is BIP32 secp256k1 at ``m/99'/99'`` of the BIP39 seed (docs/protocol.md,
  "Cryptography"): it names the device in the trustchain, signs its blocks and logins, and
  unwraps the keys the device wrapped to itself in Seed and Derive.
* The attestation key vouches that a Ledger Sync app made a login signature
  (docs/protocol.md, "Device answer").
  Real devices use Ledger's PROD key; the app's source ships a TEST key pair for builds
  without it, and a software device uses that one unless told otherwise. A backend that
  only trusts PROD refuses it, which is right: a software device is not a Ledger.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from mnemonic import Mnemonic

from ..protocol import crypto
from ..protocol.crypto import KeyPair

SEED_ID_PATH = (0x80000063, 0x80000063)
#: app-ledger-sync ``src/crypto_data.h``: the TEST attestation private key, public by design.
TEST_ATTESTATION_PRIVATE_KEY = bytes.fromhex(
    "851ae13067d5ece920e44a9af2ee7d25576f40e891f84c5715b5cae27568e270"
)
MNEMONIC_LANGUAGE = "english"  # the only wordlist Ledger devices use
MNEMONIC_STRENGTH_BITS = 256  # 24 words, as a Ledger device generates


class InvalidMnemonicError(ValueError):
    """A recovery phrase that is not a valid English BIP39 mnemonic."""


def normalize_mnemonic(phrase: str) -> str:
    """Lower-case, single-spaced words, checked against the BIP39 list and checksum."""
    words = unicodedata.normalize("NFKD", phrase).lower().split()
    if len(words) not in (12, 15, 18, 21, 24):
        raise InvalidMnemonicError(
            f"a recovery phrase has 12, 15, 18, 21 or 24 words, not {len(words)}"
        )
    wordlist = Mnemonic(MNEMONIC_LANGUAGE)
    unknown = [index + 1 for index, word in enumerate(words) if word not in wordlist.wordlist]
    if unknown:
        positions = ", ".join(str(index) for index in unknown)
        raise InvalidMnemonicError(f"word(s) at position {positions} are not BIP39 words")
    normalized = " ".join(words)
    if not wordlist.check(normalized):
        raise InvalidMnemonicError("the recovery phrase's checksum is wrong (a word is off)")
    return normalized


def generate_mnemonic() -> str:
    """A fresh 24-word recovery phrase from the operating system's randomness."""
    return str(Mnemonic(MNEMONIC_LANGUAGE).generate(strength=MNEMONIC_STRENGTH_BITS))


@dataclass(frozen=True)
class DeviceIdentity:
    seed_id: KeyPair
    attestation: KeyPair = field(
        default_factory=lambda: KeyPair.from_private_key(TEST_ATTESTATION_PRIVATE_KEY)
    )

    @classmethod
    def from_mnemonic(
        cls,
        phrase: str,
        passphrase: str = "",
        attestation_key: bytes = TEST_ATTESTATION_PRIVATE_KEY,
    ) -> DeviceIdentity:
        """The identity a Ledger device restored with ``phrase`` (and ``passphrase``) has."""
        seed = Mnemonic.to_seed(normalize_mnemonic(phrase), passphrase)
        xpriv = crypto.derive_path(crypto.master_xpriv_from_seed(seed), SEED_ID_PATH)
        return cls(
            seed_id=KeyPair.from_private_key(xpriv[:32]),
            attestation=KeyPair.from_private_key(attestation_key),
        )

    @property
    def public_key(self) -> bytes:
        return self.seed_id.public_key
