"""``creditline users``: console logins for partners' staff and the platform's admins."""

from __future__ import annotations

import sys

import typer

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, MAX_BIGINT, emit, refuse, session

users_app = typer.Typer(
    help="Create and list console users: partner admins, operators, viewers; platform admins."
)

#: The platform admin's role (creditline.auth.users.PLATFORM_ROLE).
PLATFORM_ROLE = "platform"
app.add_typer(users_app, name="users")


def _read_password() -> str:
    # The password comes from standard input, never from the command line, where it would
    # sit in the shell history and in the process list.
    if sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


@users_app.command("create")
def create(
    email: str = typer.Option(..., "--email", help="The user's login address."),
    partner: int | None = typer.Option(
        None, "--partner", min=1, max=MAX_BIGINT, help="The partner (its UIN) the user works for."
    ),
    role: str | None = typer.Option(
        None, "--role", help="The user's role: admin, operator or viewer."
    ),
    platform: bool = typer.Option(
        False, "--platform", help="Make a platform admin, who belongs to no partner."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a console user; the password is read from standard input."""
    if platform == (partner is not None):
        refuse("give either --partner PARTNER_ID with --role, or --platform")
    if platform and role not in (None, PLATFORM_ROLE):
        refuse("a platform admin takes no --role")
    if not platform and role is None:
        refuse("--role is needed: admin, operator or viewer")
    password = _read_password()
    from creditline.auth import users

    with session(audited=True) as s:
        user = users.create_user(
            s,
            partner_id=partner,
            email=email,
            password=password,
            role=users.PLATFORM_ROLE if platform else str(role),
        )
        data = {"id": user.id, "email": user.email, "role": user.role, "partner_id": partner}
    where = "platform admin" if platform else f"{user.role} of partner {partner}"
    emit(data, as_json=as_json, text=f"created {user.email} ({where})")


@users_app.command("invite")
def invite(
    email: str = typer.Option(..., "--email", help="The customer user's login address."),
    partner: int = typer.Option(
        ..., "--partner", min=1, max=MAX_BIGINT, help="The partner (its UIN)."
    ),
    customer: int = typer.Option(
        ..., "--customer", min=1, max=MAX_BIGINT, help="The partner's customer (its UIN)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Invite a customer's user, who sees only that customer's own account; the initial
    password is read from standard input."""
    password = _read_password()
    from creditline.auth import users

    with session(audited=True) as s:
        user = users.create_user(
            s,
            partner_id=partner,
            email=email,
            password=password,
            role=users.CUSTOMER_ROLE,
            customer_uin=customer,
        )
        data = {
            "id": user.id,
            "email": user.email,
            "role": user.role,
            "partner_id": partner,
            "customer_uin": customer,
        }
    emit(data, as_json=as_json, text=f"invited {user.email} (customer {customer} of {partner})")


@users_app.command("list")
def list_(
    partner: int = typer.Option(
        ..., "--partner", min=1, max=MAX_BIGINT, help="The partner (its UIN)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List a partner's console users."""
    from creditline.auth import users

    with session(reading=True) as s:
        rows = [
            {
                "id": u.id,
                "email": u.email,
                "role": u.role,
                "customer_uin": u.customer_uin,
                "created_at": u.created_at.isoformat(),
            }
            for u in users.list_users(s, partner)
        ]
    text = "\n".join(f"{r['id']}\t{r['email']}\t{r['role']}" for r in rows) or "no users"
    emit(rows, as_json=as_json, text=text)
