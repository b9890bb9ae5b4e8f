"""Which hosts a dataset URL may name (shared/netguard.py)."""

from __future__ import annotations

import pytest

from shared.netguard import PrivateAddress, check_host, networks


@pytest.mark.parametrize("host, kind", [
    ("127.0.0.1", "loopback"), ("localhost", "loopback"), ("[::1]", "loopback"),
    ("169.254.169.254", "link-local"), ("10.1.2.3", "private"), ("192.168.0.10", "private"),
    ("172.16.5.4", "private"), ("0.0.0.0", "unspecified"), ("::ffff:127.0.0.1", "loopback"),
])
def test_addresses_outside_the_public_internet_are_refused(host, kind):
    with pytest.raises(PrivateAddress) as refused:
        check_host(host)
    article = "an" if kind[0] in "aeiou" else "a"
    assert f"is {article} {kind} address" in str(refused.value)


def test_a_public_address_passes_and_allowed_networks_open_private_ones():
    check_host("93.184.216.34")
    check_host("2606:2800:220:1:248:1893:25c8:1946")
    check_host("10.1.2.3", networks(["10.0.0.0/8"]))
    with pytest.raises(PrivateAddress):
        check_host("10.1.2.3", networks(["192.168.0.0/16"]))


def test_a_name_is_checked_by_what_it_resolves_to():
    with pytest.raises(PrivateAddress) as refused:
        check_host("localhost")
    assert str(refused.value).startswith("localhost (")


def test_a_name_that_does_not_resolve_is_left_to_the_download():
    check_host("no-such-host.invalid")
