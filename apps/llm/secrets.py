"""Encryption at rest for provider API keys, through the platform's one secret box (apps.core.crypto)."""

from __future__ import annotations

from apps.core.crypto import DecryptionError, decrypt_text, encrypt_text
from apps.core.errors import ApplicationError


def encrypt_secret(plaintext: str) -> str:
    return encrypt_text(plaintext)


def decrypt_secret(token: str) -> str:
    try:
        return decrypt_text(token)
    except DecryptionError:
        raise ApplicationError(
            "A stored model API key cannot be decrypted (was SLOP_ENCRYPTION_KEY changed?); set it again",
            code="model_misconfigured",
            status=502,
        ) from None
