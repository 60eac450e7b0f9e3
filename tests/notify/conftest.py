"""Fixtures for delivery tests: a real webhook receiver and a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.notify.support import Receiver, SmtpSink


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()
