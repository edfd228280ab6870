"""No credential in any log line: API keys, chat tickets, invitation links' tokens and Stripe
secrets are masked.

A key sent in a query string is refused (401), but Daphne's access log prints the request line as
it came, and an exception message may quote what a client sent. Every line the platform writes
goes through `redact`: the formatter of our log handlers, and Daphne's access log, which
`install_access_log` replaces with one that redacts.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"

# A parameter whose name says it carries a secret, whatever the value looks like.
_SECRET_PARAMETER = re.compile(
    r"(?i)([?&;](?:api[_-]?key|key|apikey|token|access[_-]?token|ticket|secret|password|auth"
    r"|authorization|x[_-]api[_-]key)=)[^&;#\s\"']*"
)
_PATTERNS = [
    # slop_<env>_<prefix>_<secret><checksum>, and anything shaped like one (a mistyped key too)
    (re.compile(r"\bslop_[a-z0-9]{2,8}_[A-Za-z0-9_-]{8,}"), "slop_" + REDACTED),
    (re.compile(r"\btkt_[A-Za-z0-9_-]{8,}"), "tkt_" + REDACTED),  # chat tickets
    (re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}"), "sk_" + REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9]{8,}"), "whsec_" + REDACTED),
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), r"\1" + REDACTED),
    # An invitation's link carries its token in the path (/console/invite/<token>): whoever reads
    # it can join the team. Plain in a request line, URL-encoded in the ?next= of "sign in first".
    (re.compile(r"(?i)((?:/|%2F)console(?:/|%2F)invite(?:/|%2F))[^/?&#\s\"'%]+"), r"\1" + REDACTED),
]


# Each pattern above needs one of these in the line (in lower case), or an `=` for a parameter: a
# line with none of them (most lines) is returned after a few substring tests. (A regular
# expression of the same alternatives, case-insensitive, took ~19 µs over a request's JSON line,
# the most of the line's cost; these take ~1.)
_MARKERS = ("slop_", "tkt_", "k_live_", "k_test_", "whsec_", "bearer", "invite")


def redact(text: str) -> str:
    if "=" not in text:
        lowered = text.lower()
        # _MARKERS, each tested in place: a generator over them was ~1 µs of a request line's ~5.
        if not (
            "slop_" in lowered
            or "tkt_" in lowered
            or "k_live_" in lowered
            or "k_test_" in lowered
            or "whsec_" in lowered
            or "bearer" in lowered
            or "invite" in lowered
        ):
            return text
    return _substituted(text)


def _substituted(text: str) -> str:
    text = _SECRET_PARAMETER.sub(r"\1" + REDACTED, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFormatter(logging.Formatter):
    """The configured format, then `redact` over the whole line (message, arguments, traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _RedactingAccessFilter(logging.Filter):
    """granian's access log lines through `redact` (its format: slop_platform.web)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage()).replace("? HTTP/", " HTTP/", 1)  # no query string
        record.args = None
        return True


def install_access_log() -> None:
    """Make the web server's access log (granian's, or Daphne's command line) go through `redact`.

    granian logs each request from its worker, through the `granian.access` logger: a filter there
    redacts the line.

    Daphne builds its AccessLogGenerator after importing the application, from the name in
    daphne.cli, so replacing that name when slop_platform.asgi is imported covers `daphne ...`
    (Dockerfile, compose, tests) and `manage.py serve` alike.
    """
    access = logging.getLogger("granian.access")
    if not any(isinstance(f, _RedactingAccessFilter) for f in access.filters):
        access.addFilter(_RedactingAccessFilter())
    try:
        from daphne import cli
        from daphne.access import AccessLogGenerator
    except ImportError:  # served by another ASGI server: its access log is its own
        return

    class RedactingAccessLogGenerator(AccessLogGenerator):  # type: ignore[misc]
        def write_entry(self, host: Any, date: Any, request: Any, *args: Any, **kwargs: Any) -> None:
            super().write_entry(host, date, redact(str(request)), *args, **kwargs)

    cli.AccessLogGenerator = RedactingAccessLogGenerator
