"""Encryption at rest for provider API keys.

Uses `apps.core.crypto` (the platform's one secret box) when it exists; until then a local Fernet
box keyed from SECRET_KEY, with the same token format, so stored keys stay readable either way.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from apps.core.errors import ApplicationError


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"slop-llm-secrets:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ApplicationError(
            "A stored model API key cannot be decrypted (was SECRET_KEY changed?); set it again",
            code="model_misconfigured",
            status=502,
        ) from None
