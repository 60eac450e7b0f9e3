"""Schema upgrades with Alembic, the same migrations on SQLite and PostgreSQL.

Alembic is imported only to read or change a schema's revision; checking that a database is
at the head revision (every CLI command does) reads the migration scripts' own
``revision``/``down_revision`` lines and the ``alembic_version`` table instead, which costs a
short command far less than importing Alembic and loading every script."""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine

VERSIONS = Path(__file__).parent / "migrations" / "versions"
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def alembic_config() -> Config:
    _quiet()
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "creditline.db:migrations")
    return config


def _quiet() -> None:
    # Alembic narrates every step at INFO ("Context impl SQLiteImpl.", "Will assume
    # transactional DDL.", each revision run); run from creditline, whose servers log at
    # INFO, an operator needs to hear only of trouble. The alembic command line keeps its own.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema of ``engine``'s database up to ``revision``."""
    _quiet()  # before the import, which announces each of its plugins at INFO
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    _quiet()
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def head_from_scripts() -> str | None:
    """The head revision as the scripts in ``versions/`` name it, without Alembic; None
    when they do not plainly name exactly one head (then ask Alembic)."""
    revisions: set[str] = set()
    downs: set[str | None] = set()
    for path in VERSIONS.glob("*.py"):
        script = path.read_text(encoding="utf-8")
        found = {m.group(1): m.group(2) for m in _ASSIGNMENT.finditer(script)}
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found["down_revision"])
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        downs.update(down if isinstance(down, tuple | list) else (down,))
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def is_up_to_date(engine: Engine) -> bool:
    head = head_from_scripts()
    if head is None:
        return current_revision(engine) == head_revision()
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        stored = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        return list(stored) == [head]
