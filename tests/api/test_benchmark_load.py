"""The load generator's HTTP connection reads what a server sends: answers framed by
``Content-Length`` or chunked, several on one keep-alive connection, and a
``Connection: close`` after which it connects again — and it sends what it was given."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from benchmarks.load import Client, Connection, ProtocolError, Workload


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: ClassVar[set[tuple[str, int]]] = set()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.connections.add(self.client_address)
        length = int(self.headers.get("content-length", "0"))
        received = self.rfile.read(length)
        echo = (
            f"{self.command} {self.path} host={self.headers['host']} "
            f"x={self.headers.get('x-thing')} "
        ).encode() + received
        if self.path == "/chunked":
            self.send_response(201)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for piece in (echo[:5], echo[5:]):
                self.wfile.write(f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\nx-trailer: 1\r\n\r\n")
            return
        self.send_response(200)
        self.send_header("content-length", str(len(echo)))
        if self.path == "/close":
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(echo)

    do_GET = do_POST


@pytest.fixture
def port() -> Iterator[int]:
    _Handler.connections = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_answers_on_one_keep_alive_connection(port: int) -> None:
    connection = Connection("127.0.0.1", port)
    sent = connection.request("POST", "/a?b=1", b'{"x": 1}', {"x-thing": "yes"})
    assert sent == (200, f'POST /a?b=1 host=127.0.0.1:{port} x=yes {{"x": 1}}'.encode())
    assert connection.request("GET", "/g", b"", {"host": "h.example"}) == (
        200,
        b"GET /g host=h.example x=None ",
    )
    status, body = connection.request("POST", "/chunked", b"abc", {})
    assert (status, body) == (201, f"POST /chunked host=127.0.0.1:{port} x=None abc".encode())
    assert len(_Handler.connections) == 1
    connection.close()


def test_reconnects_after_connection_close(port: int) -> None:
    connection = Connection("127.0.0.1", port)
    assert connection.request("POST", "/close", b"1", {})[0] == 200
    assert connection.sock is None
    assert connection.request("POST", "/again", b"2", {})[1].endswith(b" 2")
    assert len(_Handler.connections) == 2
    connection.close()


def test_a_closed_connection_is_an_error_not_an_empty_answer(port: int) -> None:
    connection = Connection("127.0.0.1", port)
    connection.request("POST", "/a", b"", {})
    assert connection.sock is not None
    connection.sock.shutdown(1)  # the server sees the end of the requests and closes
    with pytest.raises(ProtocolError):
        connection._response()
    connection.close()


def test_a_usage_batch_is_what_json_dumps_writes() -> None:
    work = Workload("usage", 1, [], [[100000000001, 100000000002, 7]], batch=5)
    client = Client(work, 3)
    (method, path, body, headers), items = client.next()
    assert (method, path, items, headers["idempotency-key"]) == (
        "POST",
        "/v1/usage-batches",
        5,
        "u-3-1",
    )
    records = json.loads(body)["records"]
    assert body == json.dumps({"records": records}).encode()
    assert [r["event_id"] for r in records] == [f"u-3-1-{n}" for n in range(5)]
    assert {r["customer_uin"] for r in records} <= {100000000001, 100000000002, 7}
    for r in records:
        assert (r["product"], r["list_amount"], r["voucher_amount"]) == ("cvm", "0.35", "0.05")
        assert datetime.fromisoformat(r["occurred_at"]).tzinfo is not None
