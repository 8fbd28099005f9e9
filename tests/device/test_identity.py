"""A software device's keys from its recovery phrase."""

import pytest

from ledgersync.device.identity import (
    TEST_ATTESTATION_PRIVATE_KEY,
    DeviceIdentity,
    InvalidMnemonicError,
    generate_mnemonic,
    normalize_mnemonic,
)

from ..support.devices import OTHER_PHRASE


def test_seed_id_key_of_the_speculos_phrase(vectors):
    vector = vectors["derived_speculos_seed_id_key"]
    identity = DeviceIdentity.from_mnemonic(vector["mnemonic"])
    assert identity.seed_id.private_key.hex() == vector["seed_id_private_key"]
    assert identity.public_key.hex() == vector["seed_id_public_key"]


def test_default_attestation_is_the_apps_test_key(vectors):
    keys = vectors["device_attestation_keys"]
    assert TEST_ATTESTATION_PRIVATE_KEY.hex() == keys["test_private_key"]
    identity = DeviceIdentity.from_mnemonic(OTHER_PHRASE)
    assert identity.attestation.public_key.hex() == keys["test_public_key_compressed"]


def test_attestation_key_is_configurable():
    key = bytes(31) + b"\x07"
    assert (
        DeviceIdentity.from_mnemonic(OTHER_PHRASE, attestation_key=key).attestation.private_key
        == key
    )


def test_passphrase_makes_another_device(speculos_phrase, vectors):
    plain = DeviceIdentity.from_mnemonic(speculos_phrase)
    with_passphrase = DeviceIdentity.from_mnemonic(speculos_phrase, "correct horse")
    assert with_passphrase.public_key != plain.public_key
    assert DeviceIdentity.from_mnemonic(speculos_phrase, "correct horse") == with_passphrase


def test_phrases_are_normalised(speculos_phrase):
    messy = "  " + speculos_phrase.upper().replace(" ", " \n ") + "\t"
    assert normalize_mnemonic(messy) == speculos_phrase
    assert DeviceIdentity.from_mnemonic(messy) == DeviceIdentity.from_mnemonic(speculos_phrase)


@pytest.mark.parametrize(
    ("phrase", "message"),
    [
        ("abandon " * 11, "12, 15, 18, 21 or 24 words"),
        ("abandon " * 11 + "zzzz", "position 12"),
        ("abandon " * 12, "checksum"),
    ],
)
def test_invalid_phrases_are_refused_with_the_reason(phrase, message):
    with pytest.raises(InvalidMnemonicError, match=message):
        DeviceIdentity.from_mnemonic(phrase)


def test_generated_phrases_have_24_valid_words():
    phrase = generate_mnemonic()
    assert len(phrase.split()) == 24
    assert normalize_mnemonic(phrase) == phrase
    assert generate_mnemonic() != phrase
