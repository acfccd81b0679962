"""The outbound address check (``federation.transport.ip_ranges``): every default range is
refused, public addresses pass, the whitelist makes exceptions, IPv6 forms that carry an
IPv4 address are judged by it, and bad configuration is named."""

from __future__ import annotations

import pytest

from federation.transport.ip_ranges import DEFAULT_IP_RANGE_BLACKLIST, AddressFilter, InvalidIpRange

DEFAULT = AddressFilter()

REFUSED = [
    "127.0.0.1",
    "127.255.255.254",  # loopback
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.10",  # RFC 1918
    "100.64.0.1",
    "100.127.255.254",  # CGNAT
    "169.254.169.254",  # link-local (cloud metadata)
    "0.0.0.1",
    "0.0.0.0",  # this network / unspecified
    "192.0.0.8",
    "192.0.2.1",
    "198.51.100.7",
    "203.0.113.9",  # reserved, documentation
    "192.88.99.1",
    "198.18.0.1",
    "198.19.255.255",
    "224.0.0.1",
    "239.255.255.250",  # multicast
    "240.0.0.1",
    "255.255.255.255",  # reserved, broadcast
    "::1",
    "::",  # loopback, unspecified
    "fe80::1",
    "fe80::1%1",
    "febf::1",  # link-local (with a scope ID too)
    "fec0::1",  # site-local
    "fc00::1",
    "fd12:3456::1",  # unique local
    "ff02::1",  # multicast
    "2001:db8::1",
    "100::1",  # documentation, discard
]

ALLOWED = [
    "1.1.1.1",
    "8.8.8.8",
    "93.184.216.34",
    "172.15.255.255",
    "172.32.0.1",
    "100.63.255.255",
    "100.128.0.1",
    "192.169.0.1",
    "2606:4700::1111",
    "2a00:1450:4001::200e",
]


@pytest.mark.parametrize("address", REFUSED)
def test_each_default_range_is_refused(address):
    assert not DEFAULT.allows(address)
    assert DEFAULT.refusal(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address):
    assert DEFAULT.allows(address), DEFAULT.refusal(address)


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "::ffff:169.254.169.254",
        "::ffff:0.0.0.0",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "2002:7f00:1::1",
        "2002:c0a8:101::",
    ],
)
def test_ipv6_forms_carrying_a_private_ipv4_address_are_refused(address):
    assert not DEFAULT.allows(address)


@pytest.mark.parametrize("address", ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])
def test_ipv6_forms_carrying_a_public_ipv4_address_pass(address):
    assert DEFAULT.allows(address)


def test_the_default_list_is_the_documented_one():
    for cidr in (
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "fe80::/10",
        "fc00::/7",
        "0.0.0.0/8",
        "100.64.0.0/10",
        "224.0.0.0/4",
        "ff00::/8",
    ):
        assert cidr in DEFAULT_IP_RANGE_BLACKLIST


def test_whitelist_makes_exceptions_inside_the_blacklist():
    city = AddressFilter(whitelist=["10.20.0.0/16", "127.0.0.1"])
    assert city.allows("10.20.3.4")
    assert city.allows("127.0.0.1")
    assert city.allows("::ffff:10.20.3.4")  # the mapped form of a whitelisted address
    assert not city.allows("10.21.0.1")  # the rest of 10/8 stays refused
    assert not city.allows("127.0.0.2")
    assert not city.allows("::1")


def test_loopback_whitelist_for_test_setups():
    loopback = AddressFilter(whitelist=["127.0.0.0/8", "::1/128"])
    for address in ("127.0.0.1", "127.0.0.7", "::1", "::ffff:127.0.0.1"):
        assert loopback.allows(address)
    assert not loopback.allows("192.168.0.1")


def test_unspecified_addresses_are_refused_even_when_whitelisted():
    everything = AddressFilter(blacklist=[], whitelist=["0.0.0.0/0", "::/0"])
    assert everything.allows("127.0.0.1")
    assert not everything.allows("0.0.0.0")
    assert not everything.allows("::")
    assert not everything.allows("::ffff:0.0.0.0")


def test_an_empty_blacklist_allows_private_addresses():
    assert AddressFilter(blacklist=[]).allows("10.0.0.1")


def test_not_an_address_is_refused():
    assert not DEFAULT.allows("localhost")
    assert not DEFAULT.allows("")


def test_host_bits_are_masked_and_bare_addresses_are_single_hosts():
    f = AddressFilter(blacklist=["8.8.8.8/24", "1.1.1.1"])
    assert not f.allows("8.8.8.200")
    assert not f.allows("1.1.1.1")
    assert f.allows("1.1.1.2")


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "not-an-ip", "", "fd00::/129", 10, None])
def test_bad_entries_are_named(entry):
    with pytest.raises(InvalidIpRange) as info:
        AddressFilter(whitelist=["127.0.0.1", entry])
    assert "federation.ip_range_whitelist[1]" in str(info.value)
