"""Running the ``creditline`` command in-process against each engine's database."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from creditline.cli import _register, app


@dataclass
class Ran:
    """One command's outcome."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


Cli = Callable[..., Ran]


@pytest.fixture
def cli(database_url: str) -> Cli:
    """``cli("partners", "list", "--json")`` runs one command on the test database (or on
    ``url=``), with ``input=`` as its standard input, and checks its exit status
    (``expect=``; None checks nothing)."""
    _register()
    runner = CliRunner()

    def run(
        *args: object, expect: int | None = 0, url: str | None = None, input: str | None = None
    ) -> Ran:
        result = runner.invoke(
            app,
            ["--database-url", url or database_url, *map(str, args)],
            input=input,
            catch_exceptions=False,
        )
        ran = Ran(result.exit_code, result.stdout, result.stderr)
        if expect is not None:
            assert ran.exit_code == expect, (ran.exit_code, ran.stdout, ran.stderr)
        return ran

    return run
