"""Where webhooks may go: the public internet, and nowhere else.

A partner admin chooses a webhook's URL, but the request leaves from inside the
deployment: pointed at ``127.0.0.1``, ``localhost:5432``, a private network or a cloud
metadata address (``169.254.169.254``), it would reach what only creditline should
reach. So every address a target resolves to must be public: globally routable unicast
as :mod:`ipaddress` classifies it (not private, loopback, link-local, multicast,
reserved, shared or unspecified), and so must any IPv4 address embedded in an IPv6 one
(IPv4-mapped, 6to4, NAT64). Every spelling is read as the resolver reads it: IPv4 and
IPv6 literals, the integer, hex and octal forms (``2130706433``, ``0x7f.1``,
``0177.0.0.1``), and names, whose every address is checked.

The rule is checked twice: when an endpoint is added or its URL changed
(:func:`check_url`), and on every delivery, inside the HTTP transport
(:class:`PublicTransport`). That one resolves the name once, checks every address it
got, and connects to a checked address itself, keeping the endpoint's name in the
``Host`` header and as the TLS server name (certificate checked against it): a name
that answers differently between the check and the connection (DNS rebinding) cannot
slip through. Redirects are not followed (the worker's client), and any request the
transport is handed is checked the same way.

``CREDITLINE_WEBHOOK_ALLOW_PRIVATE_TARGETS`` lifts the rule, for tests and local
development.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor

import httpx

from creditline.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The delivery log's words for a refused target, and for a name with no address.
NOT_ALLOWED = "target address not allowed"
NOT_RESOLVED = "name does not resolve"

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: Name lookups run here, so a slow resolver costs a bounded wait (see :func:`resolve`).
_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="creditline-resolve")
#: Seconds a lookup may take when an endpoint is added (inside the request's
#: transaction): past that the name counts as not resolving, and deliveries check it.
ADD_TIME_LOOKUP_S = 2.0


class TargetNotAllowed(httpx.TransportError):
    """The target is (or resolves to) an address that is not on the public internet."""


class NameNotResolved(httpx.TransportError):
    """The target's name has no address (now)."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public(address: IPAddress) -> bool:
    """Whether a webhook may connect to ``address``: public unicast, and so is any IPv4
    address it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        if address in _NAT64:
            # DNS64 writes public IPv4 addresses this way on IPv6-only networks; the
            # prefix sits inside ::/8, which ipaddress counts as reserved as a whole.
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or address.is_private
    )


def literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, if it spells one: IPv4 or IPv6 text, or one of the
    integer, hex and octal IPv4 forms the C library's ``inet_aton`` accepts."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def resolve(host: str, port: int, *, timeout: float) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order (the one lookup a
    delivery makes). Raises :class:`OSError` when there is none, or when the resolver
    has not answered within ``timeout`` seconds (it has no timeout of its own to pass)."""
    lookup = _lookups.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout)
    except TimeoutError:
        raise OSError(f"no answer for {host!r} within {timeout} s") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _is_localhost_name(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def checked_addresses(
    host: str,
    port: int,
    *,
    allow_private: bool,
    timeout: float,
    request: httpx.Request | None = None,
) -> list[IPAddress]:
    """Resolve ``host`` once and return its addresses if every one may be reached.
    Raises :class:`TargetNotAllowed` or :class:`NameNotResolved`."""
    if not allow_private:
        address = literal(host)
        if _is_localhost_name(host) or (address is not None and not is_public(address)):
            raise TargetNotAllowed(NOT_ALLOWED, request=request)
    try:
        addresses = resolve(host, port, timeout=timeout)
    except (OSError, UnicodeError, ValueError):
        raise NameNotResolved(NOT_RESOLVED, request=request) from None
    if not addresses:
        raise NameNotResolved(NOT_RESOLVED, request=request)
    if not allow_private and not all(is_public(a) for a in addresses):
        raise TargetNotAllowed(NOT_ALLOWED, request=request)
    return addresses


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse (:class:`InvalidInput`) a webhook URL whose host is, or resolves to, an
    address that is not public. The host is read as the delivery's HTTP client reads it.
    A name that does not resolve now is let through: it may be set up later, and each
    delivery checks it again."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise InvalidInput(f"{url!r} is not a valid http(s) URL", param="url") from None
    if allow_private:
        return
    try:
        checked_addresses(
            parsed.host, _port(parsed), allow_private=False, timeout=ADD_TIME_LOOKUP_S
        )
    except NameNotResolved:
        return
    except TargetNotAllowed:
        raise InvalidInput(
            "a webhook must point to the public internet, not to a private, loopback, "
            "link-local, multicast, reserved or unspecified address",
            param="url",
        ) from None


class PublicTransport(httpx.BaseTransport):
    """An HTTP transport that connects only to addresses it has just checked.

    Each request's host is resolved once; if any address is not public the request is
    refused (:class:`TargetNotAllowed`) before a connection is made. Otherwise it is
    sent to the checked addresses in the resolver's order until one connects, with the
    ``Host`` header and the TLS server name left as the URL's name. Connections are not
    kept alive: one made to an address for one name must not carry another name's
    request, whose certificate it never checked.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        lookup_timeout: float = 5.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.allow_private = allow_private
        self.lookup_timeout = lookup_timeout
        self._inner = httpx.HTTPTransport(
            verify=verify, limits=httpx.Limits(max_keepalive_connections=0), trust_env=False
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.host
        addresses = checked_addresses(
            host,
            _port(url),
            allow_private=self.allow_private,
            timeout=self.lookup_timeout,
            request=request,
        )
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = host
        failure: httpx.ConnectError | None = None
        for address in addresses:
            request.url = url.copy_with(host=str(address))
            request.extensions = extensions
            try:
                return self._inner.handle_request(request)
            except httpx.ConnectError as exc:
                failure = exc
            finally:
                request.url = url
        assert failure is not None
        raise failure

    def close(self) -> None:
        self._inner.close()
