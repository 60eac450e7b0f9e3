"""What every CLI command shares: the database option, output in text or JSON, and the
mapping of refusals to a one-line reason and a non-zero exit status."""

from __future__ import annotations

import getpass
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from creditline import audit, money
from creditline.db import is_postgres, make_engine, transaction
from creditline.db.migrate import is_up_to_date, upgrade
from creditline.db.outage import first_line, wait_for
from creditline.errors import CreditlineError

try:  # Typer carries its own copy of click from 0.2x on; the command's context is there.
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - older Typer on plain click
    from click import get_current_context  # type: ignore[no-redef]

#: Exit statuses: 1 a check found problems (verify), 2 usage errors (Typer's own),
#: 3 a refusal by the rules (bad input, not found, insufficient pool or credit).
EXIT_FAILED_CHECK = 1
EXIT_REFUSED = 3

#: Commands that take a signed AMOUNT argument: ``-5.00`` is an amount, not an option.
SIGNED_AMOUNT = {"ignore_unknown_options": True}

out = Console()
err = Console(stderr=True)
log = logging.getLogger("creditline.cli")


class State:
    """Options given before the command (``creditline --database-url URL ...``)."""

    def __init__(self) -> None:
        self.database_url: str | None = None
        self._engine: Engine | None = None
        self._schema_checked = False

    def use(self, database_url: str | None) -> None:
        """Point the following commands at ``database_url`` (None: the configured one)."""
        if self._engine is not None:
            self._engine.dispose()
        self.database_url = database_url
        self._engine = None
        self._schema_checked = False

    def raw_engine(self) -> Engine:
        """The engine, whatever state its schema is in (for ``db upgrade``)."""
        if self._engine is None:
            self._engine = make_engine(self.database_url)
        return self._engine

    def engine(self, *, wait: bool = False) -> Engine:
        """The engine, its schema at head: an embedded SQLite file is upgraded in place;
        a PostgreSQL database is left to the operator, who upgrades it deliberately.

        A database that cannot be reached is refused at once, or with ``wait`` (the
        long-running ``serve`` and ``worker``) waited for: retried with a capped
        backoff, logged once, for as long as it takes."""
        engine = self.raw_engine()
        if not self._schema_checked:
            try:
                if wait:
                    current = wait_for(
                        lambda: is_up_to_date(engine), log=log, what=f"creditline {_name()}"
                    )
                else:
                    current = is_up_to_date(engine)
            except OperationalError as exc:
                refuse(f"cannot open the database: {first_line(exc)}")
            if not current:
                if is_postgres(engine):
                    refuse(
                        "the database schema is not at the latest revision; "
                        "run creditline db upgrade"
                    )
                upgrade(engine)
            self._schema_checked = True
        return engine


state = State()


def _name() -> str:
    """The running command's name (``worker``), for log lines."""
    context = get_current_context(silent=True)
    return (context.info_name if context is not None else None) or "command"


def refuse(message: str, *, code: int = EXIT_REFUSED) -> NoReturn:
    """Print a one-line reason on stderr and exit non-zero."""
    err.print(f"error: {message}", highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(code)


def _command() -> tuple[str, dict[str, Any]]:
    """The running command's words (``credit allocate``) and its arguments."""
    context = get_current_context(silent=True)
    if context is None:
        return "", {}
    words: list[str] = []
    params: dict[str, Any] = {}
    level: Any = context
    while level is not None and level.parent is not None:
        words.insert(0, level.info_name or "")
        level = level.parent
    params = {k: v for k, v in context.params.items() if k != "as_json"}
    return " ".join(words), params


def cli_actor() -> audit.Actor:
    """The audit log's view of a command: ``cli:<os user>``, no address, a fresh request id."""
    return audit.Actor(
        source="cli",
        principal=f"cli:{default_operator()}",
        partner_id=None,
        request_id=uuid.uuid4().hex,
    )


@contextmanager
def session(*, audited: bool = False) -> Iterator[Session]:
    """One transaction for the command; a refusal rolls it back and exits with its reason
    (followed, for a refused batch, by one indented line per bad record).

    ``audited``: the command writes; its audit row (the objects it changed, before and
    after, and its arguments) is appended in the same transaction, or, when refused, in one
    of its own after the rollback."""
    who = cli_actor() if audited else None
    action, params = _command() if audited else ("", {})
    try:
        with transaction(state.engine()) as s:
            if who is not None:
                audit.watch(s)
            yield s
            if who is not None:
                audit.record(s, who, action=action, after={"request": params})
    except CreditlineError as exc:
        if who is not None:
            audit.refused(
                state.engine(),
                who,
                action=action,
                code=exc.code,
                message=exc.message,
                request=params,
            )
        err.print(f"error: {exc.message}", highlight=False, soft_wrap=True, markup=False)
        for item in exc.details():
            where = f"line {item['line']}" if "line" in item else ""
            field = f" ({item['field']})" if item.get("field") else ""
            err.print(
                f"  {where}{field}: {item['message']}",
                highlight=False,
                soft_wrap=True,
                markup=False,
            )
        raise typer.Exit(EXIT_REFUSED) from None
    except OperationalError as exc:
        refuse(f"database error: {first_line(exc)}")


def emit(data: dict[str, Any] | list[Any], *, as_json: bool, text: str | None = None) -> None:
    """Print ``data`` as one JSON document (``--json``) or as ``text`` for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
    elif text is not None:
        out.print(text, highlight=False, soft_wrap=True, markup=False)
    else:
        out.print_json(data=data, default=str)


def cents(amount: int) -> str:
    """Cents as the decimal text every command prints ("12.50")."""
    return money.to_text(amount)


def default_operator() -> str:
    """Who is at the keyboard, for records made without ``--operator``."""
    try:
        return getpass.getuser() or "cli"
    except (KeyError, OSError):
        return "cli"


JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object instead of text.")
