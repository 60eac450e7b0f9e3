"""Webhooks reach only the public internet: hostile targets are refused when an endpoint is
added and again when each delivery connects; redirects are not followed; the delivery log
keeps a status code and a short reason, never what the receiver answered.

Every test here runs with ``webhook_allow_private_targets`` off (the default), except where
a loopback receiver has to answer, which says so. Names are answered by a fake resolver
(``socket.getaddrinfo`` patched), so nothing depends on the machine's DNS.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, func, select
from tests.notify.support import Receiver, customer_with_credit, drain

from creditline.config import Settings
from creditline.db import transaction
from creditline.db.tables import Delivery, DeliveryAttempt, WebhookEndpoint
from creditline.errors import InvalidInput
from creditline.notify import endpoints
from creditline.notify.targets import PublicTransport
from creditline.notify.worker import Worker

PUBLIC = "93.184.215.14"
OFF = Settings(smtp_host="", webhook_timeout_s=30.0, smtp_timeout_s=30.0)
ON = OFF.model_copy(update={"webhook_allow_private_targets": True})


class FakeDns:
    """``socket.getaddrinfo`` answering the names in ``answers`` (each a list of answers
    given in turn, the last repeated; ``None`` is "no such name"), and counting lookups.
    Every other lookup, numeric ones included, goes to the real resolver."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str] | None]] = {}
        self.lookups: list[str] = []
        self._real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return self._real(host, port, *args, **kwargs)
        self.lookups.append(name)
        turns = self.answers[name]
        answer = turns.pop(0) if len(turns) > 1 else turns[0]
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        number = int(port or 0)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, number, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, number))
            for a in answer
        ]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDns]:
    fake = FakeDns()
    fake.answers = {
        "public.example": [[PUBLIC]],
        "internal.example": [["10.1.2.3"]],
        "metadata.example": [["169.254.169.254"]],
        "mixed.example": [[PUBLIC, "127.0.0.1"]],
        "loopback6.example": [["::1"]],
        "mapped.example": [["::ffff:10.0.0.1"]],
        "nowhere.example": [None],
    }
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    yield fake


HOSTILE = [
    # loopback, and the database next door
    "http://127.0.0.1/hook",
    "http://127.0.0.1:5432/",
    "https://127.255.255.254/",
    "http://localhost:5432/",
    "http://LOCALHOST./",
    "http://db.localhost/",
    "http://[::1]/",
    # the cloud metadata service, and link-local
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fd00:ec2::254]/",
    # private and shared networks
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fc00::1]/",
    # unspecified, multicast, broadcast, reserved, documentation
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://192.0.2.10/",
    # IPv6 spellings of IPv4 addresses
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::127.0.0.1]/",
    "http://[2002:7f00:1::1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    # integer, hex and octal spellings
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://0x7f.0.0.1/",
    "http://017700000001/",
    "http://0177.1/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    # what the URL really names
    "http://public.example@127.0.0.1/",
    "http://127.0.0.1#@public.example/",
    # names that resolve to such addresses (one bad address among good ones is enough)
    "https://internal.example/hook",
    "https://metadata.example/latest",
    "https://mixed.example/hook",
    "https://loopback6.example/hook",
    "https://mapped.example/hook",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_targets_are_refused_when_added(engine: Engine, dns: FakeDns, url: str) -> None:
    partner_id, _ = customer_with_credit(engine)
    with pytest.raises(InvalidInput) as refused, transaction(engine) as s:
        endpoints.add_endpoint(s, partner_id=partner_id, url=url)
    assert refused.value.param == "url"
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0
        # Nor can an existing endpoint be pointed there.
        endpoint = endpoints.add_endpoint(s, partner_id=partner_id, url="https://public.example/")
    with pytest.raises(InvalidInput), transaction(engine) as s:
        endpoints.update_endpoint(s, partner_id=partner_id, endpoint_id=endpoint.id, url=url)


@pytest.mark.parametrize(
    "url",
    [
        "https://public.example/hook",
        "https://8.8.8.8/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://[64:ff9b::808:808]/hook",
        # No address now: accepted, and every delivery looks again.
        "https://nowhere.example/hook",
    ],
)
def test_public_targets_are_accepted(engine: Engine, dns: FakeDns, url: str) -> None:
    partner_id, _ = customer_with_credit(engine)
    with transaction(engine) as s:
        endpoint = endpoints.add_endpoint(s, partner_id=partner_id, url=url)
        assert endpoint.url == url


def _log(engine: Engine) -> list[DeliveryAttempt]:
    with transaction(engine) as s:
        return list(s.execute(select(DeliveryAttempt).order_by(DeliveryAttempt.id)).scalars())


def _hand_over_earlier_events(engine: Engine) -> None:
    """Expand the events of the setup (grant, allocation) before an endpoint exists, so
    the test event is the only delivery."""
    worker = Worker(engine, OFF)
    try:
        drain(worker)
    finally:
        worker.close()


def _send_test(engine: Engine, partner_id: int, url: str, settings: Settings) -> None:
    _hand_over_earlier_events(engine)
    with transaction(engine) as s:
        endpoint = endpoints.add_endpoint(
            s,
            partner_id=partner_id,
            url=url,
            allow_private_targets=settings.webhook_allow_private_targets,
        )
        endpoints.send_test(s, partner_id=partner_id, endpoint_id=endpoint.id)
    worker = Worker(engine, settings)
    try:
        # One attempt is enough: it fails (and is rescheduled) or succeeds.
        drain(worker, until=lambda: bool(_log(engine)))
    finally:
        worker.close()


def test_name_rebound_to_loopback_after_adding_is_refused_at_connect(
    engine: Engine, dns: FakeDns, receiver: Receiver
) -> None:
    # Public when added; 127.0.0.1, where a receiver does listen, when delivered.
    port = receiver.url.split(":")[2].split("/")[0]
    dns.answers["rebind.example"] = [[PUBLIC], ["127.0.0.1"]]
    partner_id, _ = customer_with_credit(engine)
    _send_test(engine, partner_id, f"http://rebind.example:{port}/hook", OFF)

    assert receiver.received == []
    (attempt,) = _log(engine)
    assert not attempt.succeeded and attempt.status_code is None
    assert attempt.error == "target address not allowed"
    with transaction(engine) as s:
        assert s.scalar(select(Delivery.status)) == "pending"  # retried: DNS may change back


def test_a_proxy_from_the_environment_does_not_bypass_the_check(
    engine: Engine, dns: FakeDns, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client that honoured HTTP_PROXY would hand the request to the proxy (here, the
    # loopback receiver) and never connect where the check looked.
    proxy = receiver.url.rsplit("/", 1)[0]
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("http_proxy", proxy)
    dns.answers["rebind.example"] = [[PUBLIC], ["127.0.0.1"]]
    partner_id, _ = customer_with_credit(engine)
    _send_test(engine, partner_id, "http://rebind.example/hook", OFF)
    assert receiver.received == []
    assert [a.error for a in _log(engine)] == ["target address not allowed"]


def test_delivery_connects_to_the_checked_address_and_keeps_the_name(
    engine: Engine, dns: FakeDns, receiver: Receiver
) -> None:
    # Private targets allowed, so the loopback receiver can answer. The name is looked up
    # once per delivery; a second lookup (by the HTTP client, say) would get an address
    # where nothing listens and the delivery would fail.
    port = receiver.url.split(":")[2].split("/")[0]
    dns.answers["pinned.example"] = [["127.0.0.1"], ["127.0.0.2"]]
    partner_id, _ = customer_with_credit(engine)
    _hand_over_earlier_events(engine)
    with transaction(engine) as s:
        endpoint = endpoints.add_endpoint(
            s,
            partner_id=partner_id,
            url=f"http://pinned.example:{port}/hook",
            allow_private_targets=True,
        )
        receiver.secrets.append(endpoints.secret_of(s, endpoint))
        endpoints.send_test(s, partner_id=partner_id, endpoint_id=endpoint.id)
    dns.lookups.clear()
    worker = Worker(engine, ON)
    try:
        drain(worker)
    finally:
        worker.close()
    assert dns.lookups == ["pinned.example"]
    (got,) = receiver.successes()
    assert got.host == f"pinned.example:{port}" and got.verified
    assert [a.status_code for a in _log(engine)] == [200]


def test_redirects_are_not_followed(engine: Engine, receiver: Receiver) -> None:
    # Even with private targets allowed (both servers are on loopback), a 3xx is an
    # answer, not a new target.
    internal = Receiver().start()
    try:
        location = internal.url.replace("/hook", "/admin")
        receiver.answer = (302, {"location": location}, b"moved")
        partner_id, _ = customer_with_credit(engine)
        _send_test(engine, partner_id, receiver.url, ON)
        assert len(receiver.received) == 1
        assert internal.received == []
        (attempt,) = _log(engine)
        assert not attempt.succeeded and attempt.status_code == 302
        assert attempt.error == "HTTP 302 (redirects are not followed)"
    finally:
        internal.stop()


def test_the_log_shows_status_and_reason_never_the_body(engine: Engine, receiver: Receiver) -> None:
    secret = b"FATAL: password authentication failed for user postgres; token=hunter2"
    receiver.answer = (500, {"content-type": "text/plain"}, secret)
    partner_id, _ = customer_with_credit(engine)
    _send_test(engine, partner_id, receiver.url, ON)
    (attempt,) = _log(engine)
    assert (attempt.status_code, attempt.error) == (500, "HTTP 500")
    with transaction(engine) as s:
        delivery = s.execute(select(Delivery)).scalar_one()
        assert delivery.last_error == "HTTP 500"


def test_a_closed_port_is_logged_as_connection_refused(engine: Engine) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    partner_id, _ = customer_with_credit(engine)
    _send_test(engine, partner_id, f"http://127.0.0.1:{port}/hook", ON)
    (attempt,) = _log(engine)
    assert (attempt.status_code, attempt.error) == (None, "connection refused")


def test_the_setting_is_off_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDITLINE_WEBHOOK_ALLOW_PRIVATE_TARGETS", raising=False)
    assert Settings().webhook_allow_private_targets is False
    monkeypatch.setenv("CREDITLINE_WEBHOOK_ALLOW_PRIVATE_TARGETS", "1")
    assert Settings().webhook_allow_private_targets is True


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext, list[str | None]]]:
    """An HTTPS server on 127.0.0.1 whose certificate names only ``pinned.example``; the
    port, a client context trusting that certificate, and the server names (SNI) seen."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinned.example")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("pinned.example")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    seen: list[str | None] = []
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    server_context.sni_callback = lambda _sock, server_name, _ctx: seen.append(server_name)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client_context = ssl.create_default_context(cafile=str(cert_file))
    try:
        yield server.server_address[1], client_context, seen
    finally:
        server.shutdown()
        server.server_close()


def test_tls_is_checked_against_the_name_while_connecting_to_the_pinned_address(
    dns: FakeDns, tls_receiver: tuple[int, ssl.SSLContext, list[str | None]]
) -> None:
    port, trust, seen = tls_receiver
    dns.answers["pinned.example"] = [["127.0.0.1"]]
    transport = PublicTransport(allow_private=True, verify=trust)
    with httpx.Client(transport=transport, timeout=10.0) as client:
        assert client.get(f"https://pinned.example:{port}/").status_code == 204
        # The same server by its address: the certificate does not name it.
        with pytest.raises(httpx.ConnectError):
            client.get(f"https://127.0.0.1:{port}/")
    assert seen[0] == "pinned.example"
