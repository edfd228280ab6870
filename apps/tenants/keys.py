"""The API-key format: `slop_<env>_<prefix>_<secret><checksum>`.

The prefix (8 characters) finds the row; the secret carries 190 bits of randomness; the checksum
(6 characters of a CRC32 of everything before it) lets us reject mistyped or made-up keys without a
database query, and lets secret scanners recognise our keys. Only a SHA-256 of the whole key is
stored; a high-entropy secret needs no slow hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import zlib
from dataclasses import dataclass

_ALPHABET = string.ascii_letters + string.digits
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
PREFIX_LENGTH = 8
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
_KEY = re.compile(
    rf"^slop_(?P<env>[a-z]{{2,8}})_(?P<prefix>[a-z0-9]{{{PREFIX_LENGTH}}})_"
    rf"(?P<secret>[A-Za-z0-9]{{{SECRET_LENGTH}}})(?P<checksum>[A-Za-z0-9]{{{CHECKSUM_LENGTH}}})$"
)


@dataclass(frozen=True)
class ParsedKey:
    env: str
    prefix: str


def _base62(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, rest = divmod(number, 62)
        chars.append(_ALPHABET[rest])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECKSUM_LENGTH)


def generate_key(env: str) -> tuple[str, str]:
    """A new key and its prefix."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
    body = f"slop_{env}_{prefix}_{secret}"
    return body + _checksum(body), prefix


def parse_key(raw: str) -> ParsedKey | None:
    """The key's env and prefix if it is well formed and its checksum holds; None otherwise."""
    match = _KEY.match(raw)
    if match is None:
        return None
    body = raw[:-CHECKSUM_LENGTH]
    if not hmac.compare_digest(_checksum(body), match["checksum"]):
        return None
    return ParsedKey(env=match["env"], prefix=match["prefix"])


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def key_matches(raw: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(raw), stored_hash)
