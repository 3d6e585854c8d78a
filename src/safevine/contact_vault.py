"""Contact addresses and codes encrypted at rest (AES-GCM), and a blind index to match them.

Keys are derived from SAFEVINE_SECRET_KEY with HKDF. Each ciphertext is stored with the
id of its key, so after a rotation (new key in SAFEVINE_SECRET_KEY, the old one in
SAFEVINE_OLD_SECRET_KEYS) existing rows still decrypt. The blind index is an HMAC, so a
duplicate registration is found without decrypting anything.
"""

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


@dataclass(frozen=True)
class _Key:
    id: str
    aead: AESGCM


class UnknownKeyError(KeyError):
    """A ciphertext was made with a key this process does not have."""


class ContactVault:
    def __init__(self, secret: bytes, old_secrets: tuple[bytes, ...] = ()) -> None:
        self._keys: dict[str, _Key] = {}
        for index, source in enumerate((secret, *old_secrets)):
            material = _derive(source, b"safevine contact encryption v1")
            key = _Key(hashlib.sha256(material).hexdigest()[:16], AESGCM(material))
            self._keys.setdefault(key.id, key)
            if index == 0:
                self._current = key
        self._index_key = _derive(secret, b"safevine blind index v1")

    def encrypt(self, plaintext: str, context: str) -> tuple[str, bytes]:
        """(key id, nonce + ciphertext). `context` is bound in as associated data, so a
        ciphertext copied to another column or purpose does not decrypt."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._current.aead.encrypt(nonce, plaintext.encode(), context.encode())
        return self._current.id, nonce + sealed

    def decrypt(self, key_id: str, blob: bytes, context: str) -> str:
        key = self._keys.get(key_id)
        if key is None:
            raise UnknownKeyError(key_id)
        return key.aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context.encode()).decode()

    def blind_index(self, channel: str, canonical_address: str) -> str:
        message = f"{channel}:{canonical_address}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()
