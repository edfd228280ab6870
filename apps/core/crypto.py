"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with keys from the environment.

`SLOP_ENCRYPTION_KEY` holds one or more comma-separated keys (any strings; each is stretched to a
Fernet key with HKDF). The first encrypts; all of them decrypt, so a key is rotated by putting the
new one first and re-saving rows. Without it, a key is derived from SECRET_KEY, which means
rotating SECRET_KEY makes stored secrets unreadable: production should set SLOP_ENCRYPTION_KEY.

Use `encrypt_text` / `decrypt_text` directly, or `EncryptedTextField` on a model (webhook signing
secrets, LLM provider keys, Stripe keys).
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

_PREFIX = "fernet:"


class DecryptionError(ValueError):
    """A stored secret that none of the configured keys can open."""


def _fernet_key(material: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"slop-platform", info=b"secrets-at-rest")
    return base64.urlsafe_b64encode(derived.derive(material.encode()))


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(key)) for key in keys])


def _configured_keys() -> tuple[str, ...]:
    keys = tuple(getattr(settings, "ENCRYPTION_KEYS", None) or ())
    return keys or (settings.SECRET_KEY,)


def encrypt_text(plaintext: str) -> str:
    token = _fernet(_configured_keys()).encrypt(plaintext.encode())
    return _PREFIX + token.decode()


def decrypt_text(stored: str) -> str:
    if not stored.startswith(_PREFIX):
        raise DecryptionError("not an encrypted value")
    try:
        return _fernet(_configured_keys()).decrypt(stored[len(_PREFIX) :].encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "stored secret cannot be decrypted with the configured SLOP_ENCRYPTION_KEY"
        ) from None


class EncryptedTextField(models.TextField):
    """A text column stored encrypted; Python code only ever sees the plaintext.

    Not searchable or comparable in SQL (every encryption of the same text differs)."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return decrypt_text(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_text(str(value))


def decrypt_text_or_none(stored: str | None) -> str | None:
    """The plaintext, or None for an empty value or one no configured key opens (it must then be
    entered again)."""
    if not stored:
        return None
    try:
        return decrypt_text(stored)
    except DecryptionError:
        return None
