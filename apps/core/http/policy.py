"""Which destinations the platform calls: the address policy, resolution and URL checks."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import anyio
import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DestinationRefused(httpx.ConnectError):
    """The destination resolves to an address the platform does not call. No connection was made."""


class ResponseTooLarge(httpx.TransportError):
    """The answer was bigger than the client's cap; reading stopped there."""


class TotalTimeout(httpx.TimeoutException):
    """The whole exchange took longer than the client's total deadline."""


# The last label of a host that URL parsers (WHATWG, inet_aton, getaddrinfo) read as an IPv4 number.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


def non_canonical_ipv4(host: str) -> bool:
    """True for a host that is an IPv4 address in any spelling but the dotted-decimal one:
    `010.8.8.8` and `0177.0.0.1` (octal), `0x7f.1` (hex), `127.1` (short), `2130706433` (one
    number). Software disagrees about what these mean (httpx refuses them, getaddrinfo reads octal,
    Python's ipaddress refuses leading zeros), so the address a check sees need not be the one
    connected to. A name whose last label is a number is read as IPv4 by the URL standard too."""
    if ":" in host:  # IPv6 (its dotted IPv4 tail is checked by ipaddress)
        return False
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":  # one trailing dot names the same host
        labels.pop()
    if not labels or not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return False
    try:
        return str(ipaddress.IPv4Address(host)) != host
    except ValueError:
        return True


def non_canonical_reason(host: str) -> str:
    return (
        f"{host} is not a canonical IPv4 address: write it as four decimal numbers without leading "
        "zeros (a.b.c.d), or use a host name"
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress, *, allow_private: bool | None = None) -> str | None:
    """Why the platform will not connect to this address, or None when it may."""
    if allow_private is None:
        allow_private = bool(getattr(settings, "OUTBOUND_HTTP_ALLOW_PRIVATE", False))
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            reason = address_refusal(inner, allow_private=allow_private)
            if reason:
                return f"{reason} (inside the IPv6 address {address})"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_loopback:  # before "reserved": ::1 sits in the reserved ::/8
        return None if allow_private else "a loopback address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return None if allow_private else "a private address"
    return None


def check_addresses(
    host: str, addresses: Iterable[str], refused: type[Exception] = DestinationRefused
) -> list[str]:
    checked: list[str] = []
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        reason = address_refusal(address)
        if reason:
            # One bad answer refuses the host: a name that also points inside is not called at all.
            raise refused(f"Refused to connect to {host}: it resolves to {reason} ({address})")
        if text not in checked:
            checked.append(text)
    if not checked:
        raise refused(f"Refused to connect to {host}: it does not resolve to any address")
    return checked


def resolve_checked(
    host: str,
    port: int,
    refused: type[Exception] = DestinationRefused,
    unresolved: type[Exception] = httpx.ConnectError,
) -> list[str]:
    """The addresses of `host` the platform may connect to; raises `refused` otherwise."""
    if non_canonical_ipv4(host):
        raise refused(f"Refused to connect to {host}: {non_canonical_reason(host)}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise unresolved(f"Cannot resolve {host}: {exc}") from None
    return check_addresses(host, (str(info[4][0]) for info in infos), refused)


async def resolve_checked_async(
    host: str,
    port: int,
    refused: type[Exception] = DestinationRefused,
    unresolved: type[Exception] = httpx.ConnectError,
) -> list[str]:
    if non_canonical_ipv4(host):
        raise refused(f"Refused to connect to {host}: {non_canonical_reason(host)}")
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise unresolved(f"Cannot resolve {host}: {exc}") from None
    return check_addresses(host, (str(info[4][0]) for info in infos), refused)


def outbound_url_problem(url: str) -> str | None:
    """Why a URL a tenant wants to register cannot be called, or None. Checks the shape and any IP
    literal now; names are checked again (resolved) on every connection."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "the URL must start with http:// or https://"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username or parts.password:
        return "credentials in the URL are not allowed; use the signing secret"
    if port == 0:
        return "port 0 is not a valid port"
    if non_canonical_ipv4(parts.hostname):
        return non_canonical_reason(parts.hostname)
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return _name_problem(parts.hostname, port or (443 if parts.scheme == "https" else 80))
    reason = address_refusal(address)
    return f"the URL points to {reason}" if reason else None


def _name_problem(host: str, port: int) -> str | None:
    # Early feedback only: a name that does not resolve yet is accepted, and every connection
    # checks again, so a name that later moves inside is still refused.
    try:
        resolve_checked(host, port)
    except DestinationRefused as exc:
        return str(exc).replace(f"Refused to connect to {host}: it", f"{host}", 1)
    except httpx.ConnectError:
        return None
    return None
