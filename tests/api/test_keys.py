from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from creditline.auth import keys, server_key
from creditline.cli import app
from creditline.cli import keys as keys_cli  # noqa: F401  (registers the commands)
from creditline.cli.common import state
from creditline.db import transaction
from creditline.db.tables import ApiKey as ApiKeyRow
from creditline.errors import InvalidInput, NotFound
from creditline.ledger import accounts


def test_create_lookup_revoke(engine: Engine) -> None:
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Acme", kind="reseller")
        created = keys.create(s, principal="partner", partner_id=partner.id, role="operator")
    assert re.fullmatch(r"AKID[A-Za-z0-9]{32}", created.secret_id)
    assert created.secret_key is not None and len(created.secret_key) >= 32
    with transaction(engine) as s:
        stored = s.execute(select(ApiKeyRow)).scalar_one()
        # Never in plain text.
        assert created.secret_key not in stored.secret_encrypted
        found = keys.lookup(s, created.secret_id)
        assert found.secret_key == created.secret_key
        assert (found.partner_id, found.role, found.principal) == (
            partner.id,
            "operator",
            "partner",
        )
        assert keys.authenticate(s, created.secret_id, created.secret_key).id == found.id
        with pytest.raises(keys.UnknownKey):
            keys.authenticate(s, created.secret_id, created.secret_key[:-1] + "?")
    with transaction(engine) as s:
        keys.revoke(s, created.secret_id)
    with transaction(engine) as s, pytest.raises(keys.UnknownKey):
        keys.lookup(s, created.secret_id)
    with transaction(engine) as s, pytest.raises(keys.UnknownKey):
        keys.lookup(s, "AKIDnope")


def test_customer_and_platform_keys(engine: Engine) -> None:
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Acme", kind="reseller")
        other = accounts.create_partner(s, name="Other", kind="reseller")
        customer = accounts.create_customer(s, partner_id=partner.id, name="C")
        ck = keys.create(s, principal="customer", customer_uin=customer.uin)
        pk = keys.create(s, principal="platform", name="billing feed")
        assert (ck.partner_id, ck.customer_uin, ck.role) == (partner.id, customer.uin, None)
        assert (pk.partner_id, pk.name) == (None, "billing feed")
        # A partner can neither make nor revoke keys for another partner's customers.
        with pytest.raises(NotFound):
            keys.create(s, principal="customer", partner_id=other.id, customer_uin=customer.uin)
        with pytest.raises(NotFound):
            keys.revoke(s, ck.secret_id, partner_id=other.id)
        with pytest.raises(InvalidInput):
            keys.create(s, principal="partner", partner_id=partner.id, role="owner")
        assert [k.secret_id for k in keys.list_keys(s, partner_id=partner.id)] == [ck.secret_id]
        assert len(keys.list_keys(s)) == 2


def test_sqlite_key_file_is_owner_only(engine: Engine) -> None:
    path = server_key.key_file(engine)
    if path is None:
        pytest.skip("PostgreSQL takes its server key from CREDITLINE_SECRET_KEY")
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Acme", kind="reseller")
        keys.create(s, principal="partner", partner_id=partner.id, role="admin")
    assert Path(path).exists()
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600


def test_postgres_refuses_without_server_key(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if server_key.key_file(engine) is not None:
        pytest.skip("SQLite generates its own key file")
    from creditline.config import Settings

    with pytest.raises(server_key.ServerKeyMissing):
        server_key.cipher(engine, Settings(secret_key=None))


def test_cli_create_list_revoke(engine: Engine, database_url: str) -> None:
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Acme", kind="reseller")
    runner = CliRunner(env={"CREDITLINE_DATABASE_URL": database_url})
    state._engine = None
    try:
        result = runner.invoke(
            app,
            ["keys", "create", "--partner", str(partner.id), "--role", "viewer", "--json"],
        )
        assert result.exit_code == 0, result.output
        created = json.loads(result.stdout)
        assert created["secret_key"] and created["role"] == "viewer"
        listed = runner.invoke(app, ["keys", "list", "--partner", str(partner.id), "--json"])
        assert listed.exit_code == 0, listed.output
        rows = json.loads(listed.stdout)
        assert [r["secret_id"] for r in rows] == [created["secret_id"]]
        assert "secret_key" not in rows[0]
        revoked = runner.invoke(app, ["keys", "revoke", created["secret_id"]])
        assert revoked.exit_code == 0, revoked.output
        bad = runner.invoke(app, ["keys", "create", "--partner", str(partner.id)])
        assert bad.exit_code != 0
    finally:
        if state._engine is not None:
            state._engine.dispose()
        state.database_url, state._engine = None, None
    with transaction(engine) as s, pytest.raises(keys.UnknownKey):
        keys.lookup(s, created["secret_id"])
