"""Credentials never reach a log line, whatever carried them."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.core.redaction import RedactingFormatter, _substituted, redact

KEY = "slop_live_abcd1234_" + "S" * 32 + "C" * 6


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f'"GET /memory?api_key={KEY}" 401', KEY),
        ('"GET /info?key=anything-at-all&x=1" 401', "anything-at-all"),
        ('"GET /chat/stream?content=hi&ticket=tkt_abcdefghijklmnop" 200', "tkt_abcdefghijklmnop"),
        (f"Invalid key {KEY[:-3]} (mistyped)", KEY[:-3]),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("stripe says sk_test_51Habcdefghijkl is wrong", "sk_test_51Habcdefghijkl"),
        ("whsec_abcdefghijklmnop", "whsec_abcdefghijklmnop"),
        ('"GET /console/invite/Ab_9-xYz0123456789abcdefghijklmnopqrstuvwxy HTTP/1.1" 200', "Ab_9-xYz01234"),
        ("GET /console/login?next=%2Fconsole%2Finvite%2FAb_9-xYz0123456789abcd", "Ab_9-xYz01234"),
    ],
)
def test_secrets_are_redacted(line: str, secret: str) -> None:
    assert secret not in redact(line)
    assert "[redacted]" in redact(line)


def test_ordinary_lines_are_left_alone() -> None:
    line = '"GET /memory?prefix=user/&limit=5" 200 slop_transaction_id slop_platform.asgi'
    assert redact(line) == line


def test_the_formatter_redacts_arguments_and_tracebacks() -> None:
    formatter = RedactingFormatter("%(message)s")
    try:
        raise ValueError(f"bad key {KEY}")
    except ValueError as exc:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "got %s", (KEY,), (type(exc), exc, None))
    assert KEY not in formatter.format(record)


_PIECES = st.sampled_from(
    ["slop_", "SLOP_", "live_", "abcdefgh", "XYZ12345_-", "tkt_", "sk_", "rk_", "live", "test", "_",
     "whsec_", "Bearer ", "bEaReR\t", "/console/invite/", "%2Fconsole%2Finvite%2F", "?", "&", ";",
     "key", "token", "=", "x", " ", '"', "\n", "é"]
)  # fmt: skip


@given(st.lists(_PIECES, max_size=30).map("".join))
def test_the_quick_check_never_skips_a_line_a_pattern_would_change(text: str) -> None:
    # redact() returns a line untouched when it holds none of the patterns' markers: it must give
    # what running every pattern gives, for any text.
    assert redact(text) == _substituted(text)


def test_every_marker_sends_a_line_to_the_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.core import redaction

    seen: list[str] = []
    monkeypatch.setattr(redaction, "_substituted", lambda text: seen.append(text) or text)
    for marker in redaction._MARKERS:
        redaction.redact(f"GET /x {marker.upper()} y")
    assert redaction.redact("GET /memory/k1 200") == "GET /memory/k1 200"
    assert seen == [f"GET /x {marker.upper()} y" for marker in redaction._MARKERS]
