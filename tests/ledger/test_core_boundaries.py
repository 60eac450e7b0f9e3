"""The core knows nothing of its adapters: the ledger imports neither the audit log nor
notifications, and nothing listens on SQLAlchemy's Session class for the audit log."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

import creditline.ledger
from creditline import audit

_FOREIGN = ("creditline.audit", "creditline.notify", "creditline.api", "creditline.tc3")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_ledger_imports_no_adapter() -> None:
    found = {
        f"{path.name}: {name}"
        for path in Path(creditline.ledger.__file__).parent.glob("*.py")
        for name in _imports(path)
        if name.startswith(_FOREIGN)
    }
    assert not found


def test_the_audit_log_listens_on_no_session_class() -> None:
    for name, listener in (
        ("do_orm_execute", audit._before_statement),
        ("before_flush", audit._before_flush),
        ("after_flush", audit._after_flush),
    ):
        assert not event.contains(Session, name, listener), name
