"""What every CLI command shares: the database option, output in text or JSON, and the
mapping of refusals to a one-line reason (or, with ``--json``, one JSON error object) and a
non-zero exit status.

Nothing here imports SQLAlchemy, Alembic or the tables at module level: ``creditline
--help`` and each command import only what they use (see ``tests/cli/test_cli_output.py``).
"""

from __future__ import annotations

import getpass
import json
import logging
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from creditline import money
from creditline.errors import CreditlineError, first_line

# The largest id or UIN a command takes (a larger one is a usage error): a shared limit,
# which --help reads without loading SQLAlchemy.
from creditline.limits import MAX_BIGINT as MAX_BIGINT

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from creditline import audit

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
        from creditline.db import make_engine

        if self._engine is None:
            self._engine = make_engine(self.database_url)
        return self._engine

    def engine(self, *, wait: bool = False) -> Engine:
        """The engine, its schema at head: an embedded SQLite file is upgraded in place;
        a PostgreSQL database is left to the operator, who upgrades it deliberately.

        A database that cannot be reached is refused at once, or with ``wait`` (the
        long-running ``serve`` and ``worker``) waited for: retried with a capped
        backoff, logged once, for as long as it takes."""
        from sqlalchemy.exc import OperationalError

        from creditline.db import is_postgres
        from creditline.db.migrate import is_up_to_date, upgrade
        from creditline.db.outage import wait_for

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
                refuse(f"cannot open the database: {first_line(exc)}", error="database_unavailable")
            if not current:
                if is_postgres(engine):
                    refuse(
                        "the database schema is not at the latest revision; "
                        "run creditline db upgrade",
                        error="schema_out_of_date",
                    )
                upgrade(engine)
            self._schema_checked = True
        return engine


state = State()


def _name() -> str:
    """The running command's name (``worker``), for log lines."""
    context = get_current_context(silent=True)
    return (context.info_name if context is not None else None) or "command"


def _wants_json() -> bool:
    """Whether the running command was given ``--json``."""
    context = get_current_context(silent=True)
    return bool(context is not None and context.params.get("as_json"))


def report_refusal(
    code: str,
    message: str,
    *,
    param: str | None = None,
    details: Sequence[dict[str, Any]] = (),
) -> None:
    """Say why a command was refused: with ``--json`` one JSON error object on standard
    output (the REST API's shape: ``{"error": {"code", "message", "param", "details"}}``),
    otherwise ``error: <message>`` on standard error, then one indented line per bad record
    of a refused batch."""
    if _wants_json():
        error: dict[str, Any] = {"code": code, "message": message, "param": param}
        if details:
            error["details"] = list(details)
        sys.stdout.write(json.dumps({"error": error}, default=str) + "\n")
        return
    err.print(f"error: {message}", highlight=False, soft_wrap=True, markup=False)
    for item in details:
        where = f"line {item['line']}" if "line" in item else ""
        field = f" ({item['field']})" if item.get("field") else ""
        err.print(
            f"  {where}{field}: {item['message']}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


def refuse(message: str, *, code: int = EXIT_REFUSED, error: str = "invalid_request") -> NoReturn:
    """Refuse the command: its reason (see :func:`report_refusal`, ``error`` is the
    machine-readable code) and exit status ``code``."""
    report_refusal(error, message)
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
    from creditline import audit

    return audit.Actor(
        source="cli",
        principal=f"cli:{default_operator()}",
        partner_id=None,
        request_id=uuid.uuid4().hex,
    )


@contextmanager
def session(*, audited: bool = False, reading: bool = False) -> Iterator[Session]:
    """One transaction for the command; a refusal rolls it back and exits with its reason
    (followed, for a refused batch, by one indented line per bad record).

    ``reading``: the command only reads; its transaction is read-only and takes no write
    lock (a long ``verify`` does not hold up the server's writes).

    ``audited``: the command writes; its audit row (the objects it changed, before and
    after, and its arguments) is appended in the same transaction, or, when refused, in one
    of its own after the rollback."""
    from sqlalchemy.exc import OperationalError

    from creditline import audit
    from creditline.db import read_transaction, transaction

    if audited and reading:
        raise ValueError("an audited command writes; it cannot be reading")
    who = cli_actor() if audited else None
    action, params = _command() if audited else ("", {})
    try:
        with (read_transaction if reading else transaction)(state.engine()) as s:
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
        report_refusal(exc.code, exc.message, param=exc.param, details=exc.details())
        raise typer.Exit(EXIT_REFUSED) from None
    except OperationalError as exc:
        refuse(f"database error: {first_line(exc)}", error="database_unavailable")


def emit(data: dict[str, Any] | list[Any], *, as_json: bool, text: str | None = None) -> None:
    """Print ``data`` as one JSON document (``--json``) or as ``text`` for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
    elif text is not None:
        out.print(text, highlight=False, soft_wrap=True, markup=False)
    else:
        out.print_json(data=data, default=str)


def cents(amount: int) -> str:
    """Cents as the plain decimal text of ``--json`` output ("1234.50")."""
    return money.to_text(amount)


def shown(amount: int) -> str:
    """Cents as text output shows them to people ("1,234.50")."""
    return money.to_display(amount)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 record``, ``2 records``: a count that agrees with its noun."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


@dataclass(frozen=True)
class Column:
    """A column of a text table.

    ``keep``: a UIN, an id or an amount, never cut, wrapped or dropped. Other columns are
    shown in the order given while the terminal has room, folded to fit, and left out
    (and named below the table) when it has none. ``number``: right-aligned."""

    header: str
    keep: bool = False
    number: bool = False


#: What a column costs besides its text: one space each side and one rule.
_CELL_OVERHEAD = 3
#: The narrowest a folded column is worth showing.
_MIN_FOLDED = 8


def print_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` as a table that fits the terminal (80 columns and up) without
    cutting a kept column."""
    width = out.width
    natural = [max([len(c.header), *(len(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    # A kept column is as wide as its widest cell; only its header may wrap, between words.
    kept = [
        max([*(len(w) for w in c.header.split()), *(len(row[i]) for row in rows)])
        for i, c in enumerate(columns)
    ]
    budget = width - 1 - sum(kept[i] + _CELL_OVERHEAD for i, c in enumerate(columns) if c.keep)
    widths: dict[int, int] = {i: kept[i] for i, c in enumerate(columns) if c.keep}
    dropped: list[str] = []
    for i, column in enumerate(columns):
        if column.keep:
            continue
        least = min(natural[i], max(_MIN_FOLDED, *(len(w) for w in column.header.split())))
        if budget >= least + _CELL_OVERHEAD:
            widths[i] = least
            budget -= least + _CELL_OVERHEAD
        else:
            dropped.append(column.header)
    for i, column in enumerate(columns):  # share what is left, in the order given
        if i in widths and not column.keep:
            extra = min(budget, natural[i] - widths[i])
            widths[i] += extra
            budget -= extra
    shown_at = sorted(widths)
    table = Table()
    for i in shown_at:
        column = columns[i]
        table.add_column(
            column.header,
            justify="right" if column.number else "left",
            overflow="fold",
            width=widths[i],
        )
    for row in rows:
        table.add_row(*(row[i] for i in shown_at))
    out.print(table)
    if dropped:
        out.print(
            f"Not shown at {width} columns: {', '.join(dropped)} "
            "(a wider terminal or --json shows them).",
            highlight=False,
            markup=False,
        )


def default_operator() -> str:
    """Who is at the keyboard, for records made without ``--operator``."""
    try:
        return getpass.getuser() or "cli"
    except (KeyError, OSError):
        return "cli"


JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object instead of text.")
