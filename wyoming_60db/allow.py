"""Which peers may use the server (``--allow CIDR``).

Wyoming has no authentication, and every request spends the owner's 60db
credits, so by default only loopback, private and link-local addresses are
served: the home network, never the whole internet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_ALLOWED: Final[tuple[str, ...]] = (
    "127.0.0.0/8",  # loopback
    "::1/128",
    "10.0.0.0/8",  # RFC 1918 private
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",  # RFC 4193 unique local
    "169.254.0.0/16",  # link-local
    "fe80::/10",
)


def parse_network(cidr: str) -> IpNetwork:
    """``192.168.1.0/24`` or a single address; host bits are tolerated."""
    return ipaddress.ip_network(cidr.strip(), strict=False)


@dataclass(frozen=True, slots=True)
class AllowList:
    """A set of networks; a peer inside any of them is served."""

    networks: tuple[IpNetwork, ...]

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str]) -> AllowList:
        """Parse CIDRs; raises ``ValueError`` for one that is not a network."""
        return cls(tuple(parse_network(cidr) for cidr in cidrs))

    @classmethod
    def default(cls) -> AllowList:
        """Loopback plus the private and link-local ranges."""
        return cls.from_cidrs(DEFAULT_ALLOWED)

    def permits(self, peer: object) -> bool:
        """Whether a connection from ``peer`` is served.

        ``peer`` is what ``transport.get_extra_info("peername")`` returns: a
        ``(host, port, ...)`` tuple for TCP, and a path or nothing for Unix
        sockets and stdio, which only local processes can reach.
        """
        if not isinstance(peer, tuple):
            return True
        address = peer_address(peer)
        if address is None:
            return False  # an IP peer we cannot read is refused, not waved through
        return any(address in network for network in self.networks)

    def __str__(self) -> str:
        return ", ".join(str(network) for network in self.networks)


def peer_address(peer: object) -> IpAddress | None:
    """The IP address of a TCP peer, or None when there is none to read."""
    if not isinstance(peer, tuple) or not peer or not isinstance(peer[0], str):
        return None
    host = peer[0].split("%", 1)[0]  # drop an IPv6 zone id ("fe80::1%eth0")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
        return address.ipv4_mapped
    return address
