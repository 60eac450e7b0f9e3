"""Queries live in the core, once: the adapters (console, REST, Tencent, CLI) build no SQL
and run none of their own; they call the core's functions, where each query's partner
scope is written once. And each limit has one definition (creditline.limits)."""

from __future__ import annotations

import ast
from pathlib import Path

import creditline
from creditline.db.tables import Base

SOURCE = Path(creditline.__file__).parent
ADAPTERS = ("console", "api", "tc3", "cli")

#: What of SQLAlchemy an adapter may name: the engine and session it is handed, and the
#: database's errors it maps to answers.
ALLOWED_IMPORTS = {"sqlalchemy.Engine", "sqlalchemy.orm.Session"}
ALLOWED_MODULES = ("sqlalchemy.exc",)
#: The allocation's fast paths compile the core's own statements once and run them on the
#: driver (api/fast.py through psycopg's asyncio pool, api/fast_sqlite.py on a sqlite3
#: connection); they compose the core's statements (as CTEs) but write none of their own.
FAST_PATHS = {SOURCE / "api" / "fast.py", SOURCE / "api" / "fast_sqlite.py"}
FAST_PATH_IMPORTS = {
    "sqlalchemy.CTE",
    "sqlalchemy.sql.ClauseElement",
    "sqlalchemy.sql.Executable",
    "sqlalchemy.sql.compiler.SQLCompiler",
}
#: Methods that run SQL whatever they are given.
RUNS_SQL = {"execute", "scalars", "scalar", "exec_driver_sql", "query", "executemany"}
#: Session methods that read or write a row when given a table's class.
ROW_METHODS = {"get", "add", "add_all", "delete", "merge", "refresh"}
TABLE_CLASSES = {mapper.class_.__name__ for mapper in Base.registry.mappers}


def _adapter_files() -> list[Path]:
    return sorted(path for name in ADAPTERS for path in (SOURCE / name).rglob("*.py"))


def _offences(path: Path) -> list[str]:
    found: list[str] = []
    allowed = ALLOWED_IMPORTS | (FAST_PATH_IMPORTS if path in FAST_PATHS else set())
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [
                f"{where} imports {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] == "sqlalchemy"
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            module = node.module or ""
            if module.startswith(ALLOWED_MODULES):
                continue
            found += [
                f"{where} imports {module}.{alias.name}"
                for alias in node.names
                if f"{module}.{alias.name}" not in allowed
            ]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method = node.func.attr
            if method in RUNS_SQL and path not in FAST_PATHS:
                found.append(f"{where} runs SQL (.{method})")
            first = node.args[0] if node.args else None
            if method in ROW_METHODS and isinstance(first, ast.Name) and first.id in TABLE_CLASSES:
                found.append(f"{where} reads or writes {first.id} rows (.{method})")
    return found


def test_adapters_build_and_run_no_sql() -> None:
    files = _adapter_files()
    assert len(files) > 40  # every adapter's modules were found
    offences = [offence for path in files for offence in _offences(path)]
    assert offences == []


def test_the_check_sees_sql_in_an_adapter(tmp_path: Path) -> None:
    adapter = tmp_path / "page.py"
    adapter.write_text(
        "from sqlalchemy import func, select\n"
        "from sqlalchemy.orm import Session\n"
        "from creditline.db.tables import Customer, Partner\n"
        "def page(s: Session) -> object:\n"
        "    s.get(Partner, 1)\n"
        "    return s.execute(select(func.count()).select_from(Customer)).scalar_one()\n"
    )
    found = " ".join(_offences(adapter))
    assert "imports sqlalchemy.func" in found
    assert "imports sqlalchemy.select" in found
    assert "runs SQL (.execute)" in found
    assert "reads or writes Partner rows (.get)" in found
    assert "Session" not in found


def test_each_limit_is_defined_once() -> None:
    names = ("MAX_UIN", "MAX_PAGE_SIZE", "MAX_REQUEST_PAGE_SIZE", "MAX_BIGINT", "MAX_PAGE")
    defined = [
        f"{path.relative_to(SOURCE)}: {target.id}"
        for path in sorted(SOURCE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id in names
    ]
    assert sorted(defined) == [
        "limits.py: MAX_BIGINT",
        "limits.py: MAX_PAGE_SIZE",
        "limits.py: MAX_REQUEST_PAGE_SIZE",
        "limits.py: MAX_UIN",
    ]
