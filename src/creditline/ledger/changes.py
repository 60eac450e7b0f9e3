"""What a core operation changed, as it returns it: each row's state before and after,
taken from the ``UPDATE … RETURNING`` that changed it (no read before or after).

Adapters keep these with the write (the audit log); the core only hands them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Execution options of a statement whose changes the operation returns itself as
#: :class:`RowChange` values: whoever observes statements need not read its rows.
RETURNED: dict[str, Any] = {"creditline.changes_returned": True}


@dataclass(frozen=True)
class RowChange:
    """One row of ``table`` as it was (None: created) and as it is (None: deleted);
    every column, by column name."""

    table: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
