"""``creditline serve`` as its own process (or processes, with ``--workers``), on a free
loopback port, and the peak memory of each of its processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    try:
        found = (Path(f"/proc/{pid}/task/{pid}/children").read_text()).split()
    except OSError:
        return []
    result = [int(c) for c in found]
    for child in list(result):
        result += _children(child)
    return result


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU time ``pid`` has used so far; with ``children``, also that of
    the children it has waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_processes() -> Iterator[tuple[int, bytes]]:
    """This machine's PostgreSQL processes: each one's id and command line (a backend
    names itself ``postgres: user database ...``; the postmaster is ``.../postgres``)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            program = command.split(b"\0", 1)[0]
            if program.startswith(b"postgres") or program.endswith(b"/postgres"):
                yield int(entry.name), command


def postgres_cpu_seconds() -> float:
    """CPU time used so far by this machine's PostgreSQL processes (0 when the server runs
    elsewhere): with :meth:`Server.cpu_seconds`, where a workload's CPU goes. Backends
    that have exited (pgbench's, at its end) count through the postmaster, which has
    reaped them: its children's time."""
    return sum(_cpu_seconds(pid, children=True) for pid, _ in postgres_processes())


class Server:
    """A running ``creditline serve`` (or, with ``asgi_app``, that ASGI application on the
    same uvicorn with the same workers); use as a context manager."""

    def __init__(
        self,
        url: str,
        *,
        workers: int = 1,
        log: Path | None = None,
        asgi_app: str | None = None,
    ) -> None:
        self.url = url
        self.workers = workers
        self.port = free_port()
        self.log = log
        self.asgi_app = asgi_app
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]
        )
        command = [
            sys.executable,
            "-m",
            "creditline",
            "--database-url",
            self.url,
            "serve",
            "--port",
            str(self.port),
        ]
        if self.asgi_app is not None:
            command = [
                sys.executable,
                "-m",
                "uvicorn",
                self.asgi_app,
                "--port",
                str(self.port),
                "--no-access-log",
            ]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        sink = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(command, env=env, stdout=sink, stderr=sink, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"creditline serve exited with {self.process.returncode}")
            if self._answers():
                # With several workers, give every one time to finish starting.
                time.sleep(1.0 if self.workers > 1 else 0.2)
                return self
            time.sleep(0.2)
        raise RuntimeError("creditline serve did not answer within 60 s")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"GET /v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(12).startswith(b"HTTP/1.1")
        except OSError:
            return False

    def pids(self) -> list[int]:
        """The server's processes: the one started and every descendant."""
        assert self.process is not None
        return [self.process.pid, *_children(self.process.pid)]

    def cpu_seconds(self) -> float:
        """CPU time the server's processes have used so far."""
        return sum(_cpu_seconds(pid) for pid in self.pids())

    def peak_rss_mb(self) -> dict[int, float]:
        """Each process's peak resident memory so far (``VmHWM``), in MB."""
        return {pid: _status_kb(pid, "VmHWM") / 1024 for pid in self.pids()}

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
