"""The SSRF address policy (core/addresses.py): every non-public range is refused, also when
an IPv6 address embeds it (IPv4-mapped, 6to4, NAT64, Teredo); a realm's listed networks
allow exactly themselves and never unspecified or multicast addresses."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.core.addresses import AddressPolicy, embedded_ipv4, parse_networks

PUBLIC_ONLY = AddressPolicy()
FORBIDDEN_V4 = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                "169.254.0.0/16", "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4",
                "192.0.2.0/24", "198.18.0.0/15", "255.255.255.255/32"]
FORBIDDEN_V6 = ["::1/128", "::/128", "fc00::/7", "fe80::/10", "ff00::/8", "2001:db8::/32"]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450::1"]


def _in(network: str) -> st.SearchStrategy[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    net = ipaddress.ip_network(network)
    return st.integers(0, net.num_addresses - 1).map(lambda i: net[i])


V4_FORBIDDEN = st.one_of([_in(n) for n in FORBIDDEN_V4])


@given(address=V4_FORBIDDEN)
def test_forbidden_ipv4_is_refused_in_every_ipv6_disguise(
        address: ipaddress.IPv4Address) -> None:
    value = int(address)
    disguises = [
        address,
        ipaddress.IPv6Address((0xFFFF << 32) | value),  # ::ffff:a.b.c.d (IPv4-mapped)
        ipaddress.IPv6Address((0x2002 << 112) | (value << 80) | 1),  # 6to4 2002:aabb:ccdd::1
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | value),  # NAT64
        # Teredo: the client address is stored inverted in the last 32 bits.
        ipaddress.IPv6Address((0x20010000 << 96) | (value ^ 0xFFFFFFFF)),
    ]
    for disguise in disguises:
        assert PUBLIC_ONLY.refusal(disguise) is not None, disguise


@given(address=st.one_of([_in(n) for n in FORBIDDEN_V6]))
def test_forbidden_ipv6_is_refused(address: ipaddress.IPv6Address) -> None:
    assert PUBLIC_ONLY.refusal(address) is not None


@pytest.mark.parametrize(("address", "reason"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"),
    ("172.31.255.255", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("100.64.0.1", "shared (CGNAT)"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("240.0.0.1", "reserved"),
    ("::ffff:169.254.169.254", "link-local"), ("::ffff:10.0.0.1", "private"),
])
def test_reasons(address: str, reason: str) -> None:
    assert PUBLIC_ONLY.refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    parsed = ipaddress.ip_address(address)
    assert PUBLIC_ONLY.refusal(parsed) is None
    if isinstance(parsed, ipaddress.IPv4Address):  # and when reached through IPv4-mapped
        assert PUBLIC_ONLY.refusal(ipaddress.IPv6Address((0xFFFF << 32) | int(parsed))) is None


@given(address=st.one_of(V4_FORBIDDEN, st.one_of([_in(n) for n in FORBIDDEN_V6])))
def test_a_listed_network_allows_exactly_itself(
        address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    listed = ipaddress.ip_network("127.0.0.0/8" if address.version == 4 else "fc00::/7")
    policy = AddressPolicy((listed,))
    never = address.is_unspecified or address.is_multicast
    assert (policy.refusal(address) is None) == (address in listed and not never)


def test_unspecified_and_multicast_are_never_allowed() -> None:
    everything = AddressPolicy(parse_networks(["0.0.0.0/0", "::/0"]))
    for address in ("0.0.0.0", "::", "224.0.0.1", "ff02::1", "::ffff:0.0.0.0"):
        assert everything.refusal(ipaddress.ip_address(address)) is not None, address
    assert everything.refusal(ipaddress.ip_address("10.0.0.1")) is None


def test_embedded_ipv4() -> None:
    assert embedded_ipv4(ipaddress.ip_address("::ffff:10.0.0.1")) == ipaddress.ip_address(
        "10.0.0.1")
    assert embedded_ipv4(ipaddress.ip_address("2606:4700::1")) is None


@pytest.mark.parametrize("value", ["10.0.0.1/8", "not-a-network", "10.0.0.0/33", ""])
def test_parse_networks_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="CIDR"):
        parse_networks([value])
