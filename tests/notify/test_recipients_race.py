"""Adding email recipients reads the list and writes it back: two additions at once must
both be kept (and the first settings row written once), not one lost or a database error."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from tests.race import run_together

from creditline.db import is_postgres, transaction
from creditline.ledger import accounts
from creditline.notify import recipients


@pytest.mark.parametrize("existing", [False, True], ids=["first-settings", "settings-exist"])
def test_two_recipients_added_at_once_are_both_kept(engine: Engine, existing: bool) -> None:
    if not is_postgres(engine):
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE): no race to lose")
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Acme", kind="reseller").id
        if existing:
            recipients.update_email_settings(s, partner_id=partner, add=["ops@acme.example"])
    outcomes = run_together(
        engine,
        [
            lambda s: recipients.update_email_settings(
                s, partner_id=partner, add=["fin@acme.example"]
            ),
            lambda s: recipients.update_email_settings(
                s, partner_id=partner, add=["cto@acme.example"]
            ),
        ],
    )
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    with transaction(engine) as s:
        kept = set(recipients.email_settings(s, partner).recipients)
    assert kept == {"fin@acme.example", "cto@acme.example"} | (
        {"ops@acme.example"} if existing else set()
    )
