"""``creditline users invite``: a partner's customer gets its own login (issue 17), which
sees only that customer's account; the password from standard input; refusals keep
nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select
from tests.cli.test_cli_thresholds_verify_db import partner_and_customer

from creditline.auth import users
from creditline.auth.passwords import verify_password
from creditline.db import read_transaction
from creditline.db.tables import User

PASSWORD = "a long enough password"


def _logins(engine: Engine) -> int:
    with read_transaction(engine) as s:
        return int(s.scalar(select(func.count()).select_from(User)) or 0)


def test_invite_a_customer_user(cli: Any, engine: Engine) -> None:
    partner_id, uin = partner_and_customer(cli)
    made = cli(
        "users",
        "invite",
        "--partner",
        partner_id,
        "--customer",
        uin,
        "--email",
        "Owner@Customer.example",
        "--json",
        input=PASSWORD + "\n",
    ).json()
    assert {k: made[k] for k in ("email", "role", "partner_id", "customer_uin")} == {
        "email": "owner@customer.example",
        "role": users.CUSTOMER_ROLE,
        "partner_id": partner_id,
        "customer_uin": uin,
    }
    listed = cli("users", "list", "--partner", partner_id, "--json").json()
    assert [(u["email"], u["role"], u["customer_uin"]) for u in listed] == [
        ("owner@customer.example", users.CUSTOMER_ROLE, uin)
    ]
    text = cli(
        "users",
        "invite",
        "--partner",
        partner_id,
        "--customer",
        uin,
        "--email",
        "b@c.example",
        input=PASSWORD + "\n",
    ).stdout
    assert text.strip() == f"invited b@c.example (customer {uin} of {partner_id})"
    # The password read from standard input is the login's.
    with read_transaction(engine) as s:
        stored = s.scalars(select(User).where(User.email == "owner@customer.example")).one()
        assert verify_password(stored.password_hash, PASSWORD)
        assert not verify_password(stored.password_hash, PASSWORD + "\n")


def test_invite_refusals_keep_nothing(cli: Any, engine: Engine) -> None:
    partner_id, uin = partner_and_customer(cli)
    other_partner, other_uin = partner_and_customer(cli)
    before = _logins(engine)
    for customer, password, email, says in (
        (other_uin, PASSWORD, "x@y.example", "customer"),  # another partner's customer
        (uin, "short", "x@y.example", "password"),
        (uin, PASSWORD, "not an address", "email"),
    ):
        ran = cli(
            "users",
            "invite",
            "--partner",
            partner_id,
            "--customer",
            customer,
            "--email",
            email,
            input=password + "\n",
            expect=None,
        )
        assert ran.exit_code != 0 and says in ran.stderr.lower(), (says, ran)
    cli(
        "users",
        "invite",
        "--partner",
        other_partner,
        "--customer",
        other_uin,
        "--email",
        "x@y.example",
        input=PASSWORD + "\n",
    )
    # One login per address, whoever's customer it is.
    taken = cli(
        "users",
        "invite",
        "--partner",
        partner_id,
        "--customer",
        uin,
        "--email",
        "X@y.example",
        input=PASSWORD + "\n",
        expect=None,
    )
    assert taken.exit_code != 0 and "already has a login" in taken.stderr
    assert _logins(engine) == before + 1
