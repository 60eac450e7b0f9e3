"""``creditline serve`` and ``creditline worker`` as real processes, to be killed and
restarted by the reliability tests, and a little HTTP receiver for their webhooks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[2] / "src"
SERVER_KEY = "reliability-server-key-" + "k" * 32


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment() -> dict[str, str]:
    """The environment of a child process: this checkout's code, the test server key."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env["CREDITLINE_SECRET_KEY"] = SERVER_KEY
    env["CREDITLINE_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"  # the receiver is on 127.0.0.1
    env.pop("CREDITLINE_DATABASE_URL", None)
    return env


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One ``creditline`` command in a child process, as an operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "creditline", "--database-url", database_url, *args],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Process:
    """One child process, its output appended to ``log`` across restarts."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        self.env = env or {}
        self.child: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.child = subprocess.Popen(
                self.args, env=environment() | self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, no goodbye — a crash."""
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGKILL)
            self.child.wait()
            self.kills += 1
        self.child = None

    def stop(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        self.child = None


class Server(Process):
    """``creditline serve --no-worker`` on a port of its own (``worker``: with its delivery
    worker in-process, as ``serve`` runs by default; ``env``: more of its environment)."""

    def __init__(
        self,
        database_url: str,
        log: Path,
        *,
        worker: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [
                sys.executable,
                "-m",
                "creditline",
                "--database-url",
                database_url,
                "serve",
                "--port",
                str(self.port),
                *([] if worker else ["--no-worker"]),
            ],
            log,
            env,
        )

    def start(self) -> None:
        """Start and wait until it answers HTTP (bounded: a server that never comes up fails
        the test rather than hanging it)."""
        super().start()
        self.wait_until_up()

    def wait_until_up(self, seconds: float = 60) -> None:
        """Wait until the started process answers HTTP, or fail after ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.child is not None
            if self.child.poll() is not None:
                raise RuntimeError(f"creditline serve exited; see {self.log}")
            try:
                httpx.get(self.base_url + "/openapi.json", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"creditline serve did not answer within {seconds} s; see {self.log}")


class Worker(Process):
    """``creditline worker`` with a short lease, so a killed worker's claims come back soon."""

    def __init__(self, database_url: str, log: Path) -> None:
        super().__init__(
            [
                sys.executable,
                "-m",
                "creditline",
                "--database-url",
                database_url,
                "worker",
                "--lease-seconds",
                "2",
                "--backoff-base",
                "0.2",
                "--poll-interval",
                "0.1",
            ],
            log,
        )


class Receiver:
    """A webhook endpoint on localhost that answers 204 and counts what it got."""

    def __init__(self) -> None:
        received: list[str] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                received.append(self.headers.get("webhook-id", ""))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
