"""The ``creditline`` command (Typer). Each command group lives in its own module, and each
command imports the parts of creditline it needs when it runs, so that ``creditline --help``
and a short command do not pay for SQLAlchemy, Alembic, FastAPI and every table."""

from __future__ import annotations

import typer

from creditline.cli.common import state

app = typer.Typer(
    name="creditline",
    help="Manage cloud resellers' customer credit: pools, allocations, usage and alarms.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        envvar="CREDITLINE_DATABASE_URL",
        help="The database's SQLAlchemy URL; the default is sqlite:///creditline.db.",
    ),
) -> None:
    state.use(database_url)


def _register() -> None:
    # Each module adds its commands to ``app``.
    from creditline.cli import (  # noqa: F401
        audit,
        console,
        credit,
        customers,
        db,
        demo,
        forecasts,
        keys,
        notify,
        partners,
        purchases,
        records,
        serve,
        statements,
        thresholds,
        top_ups,
        usage,
        users,
        verify,
    )


def main() -> None:
    """Entry point of the console script."""
    _register()
    app()
