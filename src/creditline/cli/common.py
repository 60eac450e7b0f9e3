"""What every CLI command shares: the database option, output in text or JSON, and the
mapping of refusals to a one-line reason and a non-zero exit status."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from creditline.db import make_engine, transaction
from creditline.errors import CreditlineError

#: Exit statuses: 1 a check found problems (verify), 2 usage errors (Typer's own),
#: 3 a refusal by the rules (bad input, not found, insufficient pool or credit).
EXIT_FAILED_CHECK = 1
EXIT_REFUSED = 3

out = Console()
err = Console(stderr=True)


class State:
    """Options given before the command (``creditline --database-url URL ...``)."""

    database_url: str | None = None
    _engine: Engine | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.database_url)
        return self._engine


state = State()


def refuse(message: str, *, code: int = EXIT_REFUSED) -> NoReturn:
    """Print a one-line reason on stderr and exit non-zero."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def session() -> Iterator[Session]:
    """One transaction for the command; a refusal rolls it back and exits with its reason."""
    try:
        with transaction(state.engine()) as s:
            yield s
    except CreditlineError as exc:
        details = exc.details()
        if details:
            for item in details:
                where = f"line {item['line']}" if "line" in item else ""
                field = f" ({item['field']})" if item.get("field") else ""
                err.print(f"  {where}{field}: {item['message']}", highlight=False, soft_wrap=True)
        refuse(exc.message)


def emit(data: dict[str, Any] | list[Any], *, as_json: bool, text: str | None = None) -> None:
    """Print ``data`` as one JSON document (``--json``) or as ``text`` for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
    elif text is not None:
        out.print(text, highlight=False, soft_wrap=True)
    else:
        out.print_json(data=data, default=str)


JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object instead of text.")
