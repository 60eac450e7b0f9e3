"""A partner has at most ``MAX_ENDPOINTS`` webhook endpoints, also when two are added at
once: the count and the insert are one step (the partner's row is locked first)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from tests.race import run_together

from creditline.db import is_postgres, transaction
from creditline.db.tables import WebhookEndpoint
from creditline.errors import InvalidInput
from creditline.ledger import accounts
from creditline.notify import endpoints

#: A public address literal: nothing to resolve, nothing local.
URL = "https://93.184.216.34/hooks/{n}"


def _partner_one_short_of_the_limit(engine: Engine) -> int:
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Acme", kind="reseller").id
        for n in range(endpoints.MAX_ENDPOINTS - 1):
            endpoints.add_endpoint(s, partner_id=partner, url=URL.format(n=n))
    return partner


def _endpoints(engine: Engine, partner: int) -> int:
    with transaction(engine) as s:
        return s.execute(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.partner_id == partner)
        ).scalar_one()


def test_the_endpoint_past_the_limit_is_refused(engine: Engine) -> None:
    partner = _partner_one_short_of_the_limit(engine)
    with transaction(engine) as s:
        endpoints.add_endpoint(s, partner_id=partner, url=URL.format(n="last"))
    with transaction(engine) as s, pytest.raises(InvalidInput, match="at most"):
        endpoints.add_endpoint(s, partner_id=partner, url=URL.format(n="over"))
    assert _endpoints(engine, partner) == endpoints.MAX_ENDPOINTS


def test_two_endpoints_added_at_once_cannot_pass_the_limit(engine: Engine) -> None:
    if not is_postgres(engine):
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE): no race to lose")
    partner = _partner_one_short_of_the_limit(engine)
    outcomes = run_together(
        engine,
        [
            lambda s: endpoints.add_endpoint(s, partner_id=partner, url=URL.format(n="a")),
            lambda s: endpoints.add_endpoint(s, partner_id=partner, url=URL.format(n="b")),
        ],
    )
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], InvalidInput), outcomes
    assert _endpoints(engine, partner) == endpoints.MAX_ENDPOINTS
