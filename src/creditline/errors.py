"""Domain errors. Each has a stable ``code``; every adapter maps them to its own shape
(HTTP status and JSON, Tencent ``Error.Code``, console message, CLI exit status)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


class CreditlineError(Exception):
    """Base of every refusal the core can give. A refused operation changes nothing."""

    code: ClassVar[str] = "invalid_request"
    #: The family an adapter maps to a status: invalid, not_found, conflict, forbidden.
    kind: ClassVar[str] = "invalid"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def details(self) -> list[dict[str, Any]]:
        """Structured detail for adapters that show more than one line."""
        return []


class InvalidAmount(CreditlineError):
    code = "invalid_amount"


class InvalidInput(CreditlineError):
    code = "invalid_input"


class NotFound(CreditlineError):
    """The object does not exist or belongs to another partner: the two look the same."""

    code = "not_found"
    kind = "not_found"


class InsufficientPool(CreditlineError):
    code = "insufficient_pool"
    kind = "conflict"


class InsufficientCredit(CreditlineError):
    code = "insufficient_available_credit"
    kind = "conflict"


class NotPermitted(CreditlineError):
    code = "not_permitted"
    kind = "forbidden"


@dataclass(frozen=True)
class LineError:
    """One bad record in a batch: its 1-based line (or position) and what is wrong."""

    line: int
    message: str
    field: str | None = None


class InvalidBatch(CreditlineError):
    """A batch with any invalid record is refused whole; every bad record is named."""

    code = "invalid_batch"

    def __init__(self, errors: list[LineError], *, what: str = "record") -> None:
        self.errors = errors
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(
            f"batch refused: {what} {first.line}: {first.message}{more}", param=first.field
        )

    def details(self) -> list[dict[str, Any]]:
        return [{"line": e.line, "field": e.field, "message": e.message} for e in self.errors]


def first_line(exc: BaseException) -> str:
    """The first line of what went wrong, the driver's own words when there are some."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
