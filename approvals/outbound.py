"""Outgoing HTTP to a URL an admin typed (the approvals webhook), never into the server's own network.

https only (http, and receivers on this machine's loopback, only with the development setting
WEBHOOK_ALLOW_HTTP). The host is resolved once and every address it resolves to is checked: loopback,
private, link-local (where cloud metadata services answer), shared, multicast, reserved and
unspecified addresses are refused, also when an IPv6 address carries one (IPv4-mapped, 6to4, NAT64).
The connection then goes to a checked address itself, so a name that resolves elsewhere the second
time (DNS rebinding) gets nowhere, while TLS still verifies the certificate for the name. Redirects are
not followed. Callers get a status class, never a socket error: the admin page that shows the last
delivery must not tell open ports from closed ones on hosts we refuse to reach.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

DELIVERED = "delivered"
REDIRECTED = "refused by receiver (3xx: redirects are not followed)"
REFUSED = "refused by receiver (4xx)"
RECEIVER_ERROR = "receiver error (5xx)"
UNREACHABLE = "unreachable"
BLOCKED = "blocked address"

# Metadata services that is_global does not already rule out (192.0.0.192: a cloud's instance metadata).
_ALSO_BLOCKED = [ipaddress.ip_network("192.0.0.0/24")]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Delivery:
    outcome: str  # one of the classes above
    retry: bool  # worth trying again later (5xx, 429, unreachable)


def address_allowed(address: str, *, allow_loopback: bool) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is link-local anyway
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None:
            return address_allowed(str(embedded), allow_loopback=allow_loopback)
    if ip.is_loopback:
        return allow_loopback
    return (ip.is_global and not ip.is_multicast and not ip.is_reserved and not ip.is_unspecified
            and not any(ip in network for network in _ALSO_BLOCKED))


def url_problem(url: str) -> str:
    """Why the URL cannot be a webhook, without resolving it (the form's check), or "". Delivery checks
    the addresses the name resolves to, every time."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        return "Give the webhook a full https:// URL."
    allow_http = settings.WEBHOOK_ALLOW_HTTP
    if not (parts.scheme == "https" or allow_http and parts.scheme == "http") or not parts.hostname:
        return "Give the webhook a full https:// URL." + ("" if allow_http else " (http:// is for development only.)")
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        literal = None
    local_name = parts.hostname.rstrip(".").lower() == "localhost" or parts.hostname.endswith(".localhost")
    if (literal is not None and not address_allowed(str(literal), allow_loopback=allow_http)) or (
            local_name and not allow_http):
        return "That address is inside the server's own network; give the receiver's public address."
    return ""


class _PinnedConnection(http.client.HTTPSConnection):
    """Connects to ``address`` (checked), speaking to the URL's host name (Host header, TLS SNI and
    certificate verification)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float, tls: bool):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address, self.tls = address, tls
        # http.client opens its socket through this (an instance attribute it sets): to the address, not the name.
        self._create_connection = lambda _host_port, timeout, source=None: socket.create_connection(
            (address, port), timeout, source)

    def connect(self):
        if self.tls:
            super().connect()
        else:
            http.client.HTTPConnection.connect(self)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float = 5) -> Delivery:
    """POST ``body`` to ``url`` if every address its host resolves to is allowed; the outcome's class."""
    if url_problem(url):
        return Delivery(BLOCKED, retry=False)
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    try:
        resolved = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return Delivery(UNREACHABLE, retry=True)
    addresses = list(dict.fromkeys(info[4][0] for info in resolved))
    if not addresses or not all(address_allowed(a, allow_loopback=settings.WEBHOOK_ALLOW_HTTP) for a in addresses):
        return Delivery(BLOCKED, retry=False)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    for address in addresses:
        connection = _PinnedConnection(parts.hostname, port, address=address, timeout=timeout, tls=tls)
        try:
            connection.request("POST", path, body=body, headers=headers)
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException):
            continue  # the next address; the reason stays here
        finally:
            connection.close()
        if status < 300:
            return Delivery(DELIVERED, retry=False)
        if status < 400:
            return Delivery(REDIRECTED, retry=False)
        if status < 500:
            return Delivery(REFUSED, retry=status == 429)
        return Delivery(RECEIVER_ERROR, retry=True)
    return Delivery(UNREACHABLE, retry=True)
