"""Where a dataset's URL may lead: public servers only, unless configured.

An operator's dataset URL is fetched by the ingest service from inside the
platform's network. Pointed at a private, loopback or link-local address it
would make the service a way in: the cloud's metadata endpoint
(169.254.169.254), memcached (no authentication), the broker's ports.
Addresses outside the public internet are refused, except in the networks
DOWNLOAD_ALLOWED_NETWORKS names (CIDRs, for a state's server on a private
link, or the tests' local servers). Admin checks a URL when the dataset is
recorded; ingest checks every host it connects to, each redirect's too.

A host name is resolved and every address it has is checked; a name that
does not resolve is left to the download, which reports it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PrivateAddress(ValueError):
    """A URL's host is, or resolves to, an address outside the public internet."""


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"


def addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The host's addresses: itself when it is one, else what it resolves to
    (nothing when it does not resolve)."""
    literal = host.strip("[]")
    try:
        return [ipaddress.ip_address(literal)]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(literal, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0])
                              for info in found))


def check_host(host: str, allowed: Iterable[Network] = ()) -> None:
    """Raise PrivateAddress naming the address when `host` is, or resolves
    to, an address that is not public and in none of `allowed`."""
    allowed = tuple(allowed)
    for address in addresses(host):
        mapped = getattr(address, "ipv4_mapped", None) or address
        if mapped.is_global or any(mapped in network for network in allowed):
            continue
        shown = host if host.strip("[]") == str(address) else f"{host} ({address})"
        kind = _kind(mapped)
        article = "an" if kind[0] in "aeiou" else "a"
        raise PrivateAddress(
            f"{shown} is {article} {kind} address: dataset URLs must point at public "
            "servers (DOWNLOAD_ALLOWED_NETWORKS lists private networks to allow)")
