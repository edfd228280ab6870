"""Secrets at rest: encrypted in the table, readable through the model, rotatable keys."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings

from apps.core.crypto import DecryptionError, decrypt_text, encrypt_text
from apps.tools.models import Tool

pytestmark = pytest.mark.django_db


def test_round_trip_and_no_plaintext() -> None:
    stored = encrypt_text("whsec_top-secret")
    assert "top-secret" not in stored
    assert stored != encrypt_text("whsec_top-secret")  # randomised
    assert decrypt_text(stored) == "whsec_top-secret"


def test_the_signing_secret_is_encrypted_in_the_table(alice) -> None:
    tool = Tool.objects.create(
        tenant=alice, slug="weather", webhook_url="https://x.example", signing_secret="whsec_plain-text-1234"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT signing_secret FROM tools_tool WHERE id = %s", [tool.pk])
        raw = cursor.fetchone()[0]
    assert raw.startswith("fernet:")
    assert "plain-text" not in raw
    assert Tool.objects.for_tenant(alice).get(pk=tool.pk).signing_secret == "whsec_plain-text-1234"


def test_key_rotation_keeps_old_secrets_readable() -> None:
    with override_settings(ENCRYPTION_KEYS=["old-key"]):
        stored = encrypt_text("s3cret")
    with override_settings(ENCRYPTION_KEYS=["new-key", "old-key"]):
        assert decrypt_text(stored) == "s3cret"
    with override_settings(ENCRYPTION_KEYS=["new-key"]), pytest.raises(DecryptionError):
        decrypt_text(stored)
