"""``creditline keys``: create, revoke and list API keys."""

from __future__ import annotations

import typer

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, MAX_BIGINT, emit, refuse, session

keys_app = typer.Typer(
    help="Create, revoke and list API keys for the REST and Tencent-compatible APIs."
)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def create(
    partner: int | None = typer.Option(
        None, "--partner", min=1, max=MAX_BIGINT, help="The partner (its UIN) the key acts for."
    ),
    role: str | None = typer.Option(
        None, "--role", help="The partner key's role: admin, operator or viewer."
    ),
    customer: int | None = typer.Option(
        None,
        "--customer",
        min=1,
        max=MAX_BIGINT,
        help="The customer (its UIN) whose key reads only its own credit.",
    ),
    platform: bool = typer.Option(
        False, "--platform", help="Make a platform key, for vendor staff and the billing feed."
    ),
    name: str | None = typer.Option(
        None, "--name", help="The key's name, shown as the operator on records."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a key and print its secret — the only time the secret is shown."""
    from creditline.auth import keys

    chosen = [partner is not None, customer is not None, platform]
    if sum(chosen) != 1:
        refuse("give exactly one of --partner PARTNER_ID --role ROLE, --customer UIN, --platform")
    if partner is not None and role is None:
        refuse("a partner key needs --role admin|operator|viewer")
    if partner is None and role is not None:
        refuse("--role applies only to a partner key")
    principal = "partner" if partner is not None else "customer" if customer else "platform"
    with session(audited=True) as s:
        key = keys.create(
            s,
            principal=principal,
            partner_id=partner,
            role=role,
            customer_uin=customer,
            name=name,
        )
    data = key.describe() | {"secret_key": key.secret_key}
    emit(
        data,
        as_json=as_json,
        text=(
            f"secret_id  {key.secret_id}\nsecret_key {key.secret_key}\n"
            "The secret key is shown only now; keep it safe."
        ),
    )


@keys_app.command("revoke")
def revoke(
    secret_id: str = typer.Argument(..., help="The key's secret id (AKID...)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Revoke a key: every request made with it fails from now on."""
    from creditline.auth import keys

    with session(audited=True) as s:
        key = keys.revoke(s, secret_id)
    emit(key.describe(), as_json=as_json, text=f"revoked {key.secret_id}")


@keys_app.command("list")
def list_(
    partner: int | None = typer.Option(
        None, "--partner", min=1, max=MAX_BIGINT, help="List only this partner's keys."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List keys, never their secrets."""
    from creditline.auth import keys

    with session(reading=True) as s:
        found = keys.list_keys(s, partner_id=partner)
    rows = [k.describe() for k in found]
    lines = [
        f"{k.secret_id}  {k.principal:<8} {k.partner_id or '-'!s:<14} {k.role or '-':<8} "
        f"{'revoked' if k.revoked_at else 'live':<7} {k.name}"
        for k in found
    ]
    emit(rows, as_json=as_json, text="\n".join(lines) or "no keys")
