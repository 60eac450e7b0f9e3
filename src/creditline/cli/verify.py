"""``creditline verify``: the conservation check of DESIGN §2."""

from __future__ import annotations

import typer

from creditline.cli import app
from creditline.cli.common import EXIT_FAILED_CHECK, JSON_OPTION, cents, emit, err, session


def _shown(value: int | str) -> str:
    # Balances are cents; fired-threshold lists are already text.
    return cents(value) if isinstance(value, int) else value


@app.command("verify")
def verify_command(as_json: bool = JSON_OPTION) -> None:
    """Recompute every pool, credit and consumption from its records.

    Exits with status 1, naming each mismatch, when any disagrees."""
    from creditline.ledger.verify import verify

    with session(reading=True) as s:
        mismatches = verify(s)
    data = {
        "ok": not mismatches,
        "mismatches": [
            {
                "subject": m.subject,
                "id": m.id,
                "field": m.field,
                "stored": _shown(m.stored),
                "expected": _shown(m.expected),
                "message": m.describe(),
            }
            for m in mismatches
        ],
    }
    if as_json:
        emit(data, as_json=True)
    elif not mismatches:
        emit(data, as_json=False, text="ok: every balance agrees with its records")
    else:
        for m in mismatches:
            err.print(m.describe(), highlight=False, soft_wrap=True, markup=False)
    if mismatches:
        raise typer.Exit(EXIT_FAILED_CHECK)
