"""Private keys at rest: sealed with AES-256-GCM under a key-encryption key (KEK) that the
operator keeps outside the database (an environment variable or a file).

A sealed value is ``sealed:v1:`` + base64url(12-byte nonce + ciphertext + tag). The
associated data is the key's name (its ``kid``), so a sealed value copied onto another row
does not open. Without a KEK nothing is sealed and values read back as stored. With one,
a value stored in clear is refused (fail closed: the operator asked for encryption), except
while ``smartrealm keys encrypt`` converts a store."""

from __future__ import annotations

import base64
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:v1:"
KEK_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM nonce size NIST SP 800-38D recommends


class KeysLocked(Exception):  # noqa: N818 - a state, like guard.KeySetUnavailable
    """The stored keys cannot be used with the key-encryption key given (none, or the
    wrong one), or are in clear although one is given. The message says what to do."""


class KeySealer:
    def __init__(self, kek: bytes | None, *, allow_clear: bool = False) -> None:
        if kek is not None and len(kek) != KEK_BYTES:
            raise ValueError(f"a key-encryption key is {KEK_BYTES} bytes")
        self._aead = AESGCM(kek) if kek is not None else None
        self._allow_clear = allow_clear

    @property
    def seals(self) -> bool:
        return self._aead is not None

    def seal(self, text: str, name: str) -> str:
        if self._aead is None:
            return text
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, text.encode(), name.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str, name: str) -> str:
        if not stored.startswith(PREFIX):
            if self._aead is not None and not self._allow_clear:
                raise KeysLocked("the signing keys are stored in clear although a "
                                 "key-encryption key is set: run `smartrealm keys encrypt`")
            return stored
        if self._aead is None:
            raise KeysLocked("the signing keys are encrypted: set "
                             "SMARTREALM_KEY_ENCRYPTION_KEY (or SMARTREALM_KEY_ENCRYPTION_"
                             "KEY_FILE) to the key-encryption key")
        raw = base64.urlsafe_b64decode(stored[len(PREFIX):])
        try:
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                      name.encode()).decode()
        except InvalidTag:
            raise KeysLocked(f"the key-encryption key does not open the stored key {name!r}: "
                             "wrong key-encryption key?") from None


CLEAR = KeySealer(None)
