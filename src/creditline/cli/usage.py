"""``creditline usage``: usage files from the vendor's billing feed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, emit, err, plural, session

if TYPE_CHECKING:
    from creditline import usage_file

usage = typer.Typer(help="Import usage (charges and refunds).", no_args_is_help=True)
app.add_typer(usage, name="usage")


@contextmanager
def _progress_bar(wanted: bool) -> Iterator[usage_file.Progress | None]:
    # Only for a person at a terminal: never in --json output, pipes or CI logs.
    if not (wanted and sys.stdout.isatty() and sys.stderr.isatty()):
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def advance(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        yield advance


@usage.command("import")
def import_command(
    file: Path = typer.Argument(
        ...,
        help="The usage file to import, .csv or .jsonl.",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
    fmt: str | None = typer.Option(
        None, "--format", help="The file's format, csv or jsonl; by default its extension says."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import a usage file in one transaction, all of it or, if any line is bad, none.

    Every bad line is named. Event ids seen before are counted as duplicates."""
    from creditline import usage_file

    with _progress_bar(not as_json) as progress, session(audited=True) as s:
        result = usage_file.import_file(s, file, fmt, progress=progress)
    alarms = [
        {
            "id": a.id,
            "customer_uin": a.customer_uin,
            "partner_id": a.partner_id,
            "threshold": a.threshold,
        }
        for a in result.alarms
    ]
    text = (
        f"{plural(result.records, 'record')}: {result.accepted} accepted, "
        f"{plural(result.duplicates, 'duplicate')}, {plural(len(alarms), 'alarm')} raised"
    )
    for a in alarms:
        text += f"\n  customer {a['customer_uin']}: {a['threshold']} % of credit reached"
    emit(
        {
            "file": str(file),
            "records": result.records,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "alarms": alarms,
        },
        as_json=as_json,
        text=text,
    )
