"""Encryption at rest for per-tenant Stripe secrets (Fernet: AES-128-CBC + HMAC-SHA256).

The key is derived from SLOP_ENCRYPTION_KEY when set, else from SECRET_KEY, so rotating SECRET_KEY
without setting SLOP_ENCRYPTION_KEY makes stored secrets unreadable (they then read as missing and
must be entered again). Kept small on purpose: it belongs in apps/core/crypto.py once that exists.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

_CONTEXT = b"slop-platform/pay/stripe-secrets/v1"


def _fernet() -> Fernet:
    material = os.environ.get("SLOP_ENCRYPTION_KEY") or settings.SECRET_KEY
    digest = hashlib.sha256(_CONTEXT + b"\x00" + material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_secret(token: str) -> str | None:
    """The plaintext, or None when the token was made with another key or is damaged."""
    if not token:
        return None
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None
