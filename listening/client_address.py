"""The address a listener's request came from, for the join rate limit per client address.

`REMOTE_ADDR` is this server's peer. Behind a reverse proxy the peer is the proxy and the
client is named in X-Forwarded-For, a header any client can also write itself. So the header
is believed only when the peer is one of `settings.HAFM_TRUSTED_PROXIES`, and only as far as
trusted proxies wrote it: each proxy appends its own peer's address, so the right-most entry
that is not a trusted proxy is the client. Entries left of it came from the client and are ignored.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `text` names (an IPv4-mapped IPv6 address as IPv4), or None."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def _is_trusted(text: str) -> bool:
    address = _address(text)
    return address is not None and any(address in network for network in settings.HAFM_TRUSTED_PROXIES)


def client_address(request: HttpRequest) -> str:
    """The client's address: the peer, or behind trusted proxies the right-most untrusted
    X-Forwarded-For entry (canonical form when it is an address)."""
    peer = request.META.get("REMOTE_ADDR", "")
    if not _is_trusted(peer):
        return peer
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop):
            return str(_address(hop) or hop)
    return hops[0] if hops else peer  # a request from the proxies themselves
