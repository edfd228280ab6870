"""Who is on the other end of a request: the socket peer, or what a trusted proxy says it saw.

X-Forwarded-For is written by whoever sends the request, so it is believed only when the peer is a
proxy the operator named in SLOP_TRUSTED_PROXIES. Proxies append the address they received from, so
the right-most address that is not one of ours is the client; anything left of it may be forged.
Rate limits per address and the loopback-only demo surface both rely on this.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    networks: list[Network] = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"SLOP_TRUSTED_PROXIES: {item!r} is not an IP address or CIDR network"
            ) from None
    return tuple(networks)


@cache
def _trusted(items: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(items)


def trusted_proxies() -> tuple[Network, ...]:
    return _trusted(tuple(settings.SLOP_TRUSTED_PROXIES))


@lru_cache(maxsize=4096)  # (addresses are immutable values)
def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


@lru_cache(maxsize=4096)
def _peer_text(peer: str) -> str:
    """The address of a peer whose request names no forwarder, as client_address writes it (the
    request line's, and the anonymous rate limit's, every request: ~3 µs parsed each time)."""
    address = _address(peer)
    return peer if address is None else str(address)


def client_address(peer: str | None, forwarded_for: str | None) -> str:
    """The client's address given the socket peer and the X-Forwarded-For header ("" if unknown)."""
    if not forwarded_for:
        return _peer_text(peer or "")
    peer_address = _address(peer or "")
    if peer_address is None:
        return peer or ""
    networks = trusted_proxies()
    if not _is_trusted(peer_address, networks):
        return str(peer_address)
    client = peer_address
    for hop in reversed(forwarded_for.split(",")):
        address = _address(hop)
        if address is None:
            break  # a hop we cannot read: stop at the last one we trust
        client = address
        if not _is_trusted(address, networks):
            break
    return str(client)


def request_client_address(meta: Mapping[str, str]) -> str:
    """client_address() for a Django request's META."""
    return client_address(meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"))


def is_loopback(address: str) -> bool:
    parsed = _address(address)
    return parsed is not None and parsed.is_loopback
