"""Which IP addresses the AS may connect to when it fetches a document a client named (its
``jwks_uri``): a server-side request forgery (SSRF) guard.

A client chooses the URL; the AS makes the request from inside the hospital network. Without
a guard, registering ``https://10.0.0.5/admin`` or ``http://169.254.169.254/...`` (a cloud
metadata service) would make the AS probe or reach systems no outsider can. So only
globally routable unicast addresses are allowed, unless the realm explicitly lists a network
(``auth_server.private_fetch_networks``; a development realm on loopback lists loopback).

The decision is made on the address actually connected to (``authz/safe_fetch.py``), never
on a host name, so a name that resolves to a public address at registration and to a
private one later (DNS rebinding) gains nothing. Addresses that embed an IPv4 address
(IPv4-mapped, 6to4, Teredo, NAT64) are judged by the IPv4 address they lead to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 6598: shared address space (carrier-grade NAT) — not global, yet not "private" either.
CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
# RFC 6052 §2.1: the NAT64 well-known prefix; the last 32 bits are the IPv4 destination.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

# (why an address is refused, test) in order: the first that matches names the reason.
# Never allowed, whatever the realm says: no server listens on these.
NEVER: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("unspecified", lambda a: a.is_unspecified),  # 0.0.0.0 / :: reach the local host
    ("multicast", lambda a: a.is_multicast),
)
# Refused unless the realm lists a network that contains the address.
NOT_PUBLIC: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("loopback", lambda a: a.is_loopback),
    ("link-local", lambda a: a.is_link_local),  # 169.254/16 (cloud metadata), fe80::/10
    ("shared (CGNAT)", lambda a: a in CGNAT),
    ("reserved", lambda a: a.is_reserved),  # 240.0.0.0/4 and unassigned IPv6 space
    ("private", lambda a: a.is_private),  # RFC 1918, fc00::/7 and other special ranges
    ("not globally routable", lambda a: not a.is_global),
)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to, if it embeds one."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # (server, client): the client is where packets go
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Public unicast addresses, plus the networks the realm allows explicitly."""

    allowed_networks: tuple[IPNetwork, ...] = ()

    def refusal(self, address: IPAddress) -> str | None:
        """Why the AS must not connect to ``address``; None when it may."""
        embedded = embedded_ipv4(address)
        # An IPv4-mapped address *is* its IPv4 address on a dual-stack socket; the other
        # forms are judged both as themselves and by where they lead.
        mapped = isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None
        for candidate in (embedded,) if mapped else (address, embedded):
            if candidate is None:
                continue
            reason = self._judge(candidate)
            if reason is not None:
                return reason
        return None

    def _judge(self, address: IPAddress) -> str | None:
        for reason, test in NEVER:
            if test(address):
                return reason
        if any(address.version == n.version and address in n for n in self.allowed_networks):
            return None
        for reason, test in NOT_PUBLIC:
            if test(address):
                return reason
        return None


def parse_networks(values: Sequence[str]) -> tuple[IPNetwork, ...]:
    """CIDR networks (``10.1.0.0/16``, ``::1/128``); a value with host bits set is refused
    (``10.1.2.3/16`` is a typo more often than an intent). ValueError names the value."""
    networks: list[IPNetwork] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=True))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a CIDR network: {exc}") from None
    return tuple(networks)


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is an IP literal (brackets stripped), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
