"""The limits every door shares, each defined once.

The core serves pages of at most :data:`MAX_PAGE_SIZE` rows (the CSV export reads in pages
that long, and the CLI, an operator's tool, may ask for as many); a client of the REST API
or the Tencent-compatible API asks for at most :data:`MAX_REQUEST_PAGE_SIZE` at a time,
and is refused above it. (No imports: the CLI reads these before it loads anything.)
"""

from __future__ import annotations

#: The largest value of a BIGINT column: every id and UIN; a larger number is nobody's.
MAX_BIGINT = 2**63 - 1

#: The largest UIN (a BIGINT): a larger number is nobody's, and is refused as input.
MAX_UIN = MAX_BIGINT

#: The longest page the core reads in one query (records, customers, messages, endpoints,
#: deliveries, audit events).
MAX_PAGE_SIZE = 500

#: The longest page a client may ask for through the REST API (``limit``, ``page_size``)
#: or the Tencent-compatible API (``Limit``, ``PageSize``).
MAX_REQUEST_PAGE_SIZE = 100


#: The last page number a numbered listing serves (the console's customers, the REST
#: API's ``page``): deeper than this, a client walks with a search or a cursor.
MAX_PAGE_NUMBER = 100_000


def check_page_size(limit: int) -> None:
    """Refuse a page size the core does not serve (outside 1-:data:`MAX_PAGE_SIZE`)."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        from creditline.errors import InvalidInput

        raise InvalidInput(f"page size must be 1-{MAX_PAGE_SIZE}", param="limit")
