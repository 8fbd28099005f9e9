"""The protocol layer's exceptions.

Every decoder and verifier in :mod:`ledgersync.protocol` raises a subclass of
:class:`ProtocolError` for bad input; any other exception escaping from the layer is a bug.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class: the input breaks a rule of the Ledger Key Ring Protocol."""


class DecodeError(ProtocolError):
    """Bytes that are not a well-formed TLV structure, command, block or envelope."""


class EncodeError(ProtocolError):
    """A value that cannot be written on the wire (too long, wrong size)."""


class SignatureError(ProtocolError):
    """A signature that is malformed or does not verify."""


class CryptoError(ProtocolError):
    """A key, ciphertext or derivation step that is invalid (bad key, failed decryption)."""


class ChallengeError(ProtocolError):
    """An authentication challenge or Seed-ID response that is malformed or does not verify."""


class ResolutionError(ProtocolError):
    """A stream that breaks a resolution rule.

    ``height`` is the index of the offending block in its stream and ``rule`` a short stable
    identifier of the rule broken (for example ``"parent"`` or ``"signature"``), suitable for
    tests and machine-readable reports; the message says it for humans.
    """

    def __init__(self, height: int, rule: str, message: str, path: str | None = None) -> None:
        where = f"stream {path} " if path is not None else ""
        super().__init__(f"{where}block {height}: {message}")
        self.height = height
        self.rule = rule
        self.detail = message
        self.path = path

    def with_path(self, path: str) -> ResolutionError:
        """The same violation, naming the stream it was found in."""
        return ResolutionError(self.height, self.rule, self.detail, path)
