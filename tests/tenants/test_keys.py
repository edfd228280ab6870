from __future__ import annotations

from apps.tenants.keys import generate_key, hash_key, parse_key


def test_key_format_and_checksum() -> None:
    key, prefix = generate_key("live")
    assert key.startswith(f"slop_live_{prefix}_")
    parsed = parse_key(key)
    assert parsed is not None and parsed.prefix == prefix and parsed.env == "live"
    tampered = key[:-7] + ("a" if key[-7] != "a" else "b") + key[-6:]
    assert parse_key(tampered) is None
    assert parse_key("slop_live_short") is None
    assert len(hash_key(key)) == 64 and key not in hash_key(key)
