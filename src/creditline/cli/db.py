"""``creditline db``: the schema of the database."""

from __future__ import annotations

import typer

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, emit, first_line, refuse, state

db = typer.Typer(help="Manage the database schema.", no_args_is_help=True)
app.add_typer(db, name="db")


@db.command("upgrade")
def upgrade_command(as_json: bool = JSON_OPTION) -> None:
    """Bring the database schema to the latest revision (Alembic), on SQLite or PostgreSQL."""
    from creditline.db.migrate import current_revision, head_revision, upgrade

    engine = state.raw_engine()
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    except Exception as exc:  # any failure here is the operator's to read, in one line
        refuse(f"upgrade failed: {first_line(exc)}", error="upgrade_failed")
    emit(
        {"revision_before": before, "revision": after, "head": head_revision()},
        as_json=as_json,
        text=f"schema at {after}" + ("" if before == after else f" (was {before or 'empty'})"),
    )
