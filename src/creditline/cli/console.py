"""``creditline console``: start the Partner Center, with demo data and logins if asked."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from creditline.cli import app
from creditline.cli.common import out, session, state
from creditline.cli.serve import served_url

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: The demo's logins. Printed on start; they exist only in a database the demo made.
DEMO_PASSWORD = "demo-password-1"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    partner: str


def add_demo_users(s: Session, *, look_at: int) -> list[DemoLogin]:
    """Logins for the demo: the main partner's admin, operator and viewer, each other
    partner's admin, and a platform admin."""
    from creditline.auth import users
    from creditline.ledger import accounts, reports

    made: list[DemoLogin] = []
    main = accounts.get_partner(s, look_at)
    for role in users.PARTNER_ROLES:
        email = f"{role}@demo.example"
        users.create_user(s, partner_id=look_at, email=email, password=DEMO_PASSWORD, role=role)
        made.append(DemoLogin(email, role, main.name))
    for partner in [p for p in reports.partners(s) if p.id != look_at]:
        email = f"admin-{partner.id}@demo.example"
        users.create_user(
            s, partner_id=partner.id, email=email, password=DEMO_PASSWORD, role="admin"
        )
        made.append(DemoLogin(email, "admin", partner.name))
    users.create_user(
        s, partner_id=None, email="platform@demo.example", password=DEMO_PASSWORD, role="platform"
    )
    made.append(DemoLogin("platform@demo.example", "platform admin", "—"))
    return made


@app.command("console")
def console_command(
    demo: bool = typer.Option(
        False, "--demo", help="Fill an empty database with demo data and demo logins first."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="The address to listen on."),
    port: int = typer.Option(8000, "--port", help="The port to listen on."),
) -> None:
    """Start the Partner Center (and the REST API beside it) and print where to log in."""
    import uvicorn

    from creditline.app import create_app
    from creditline.auth import users
    from creditline.config import get_settings
    from creditline.db.migrate import upgrade
    from creditline.demo import build_demo
    from creditline.ledger import reports

    upgrade(state.engine())
    logins: list[DemoLogin] = []
    if demo:
        with session() as s:
            has_users = users.user_count(s)
            partners = reports.partner_count(s)
            if partners == 0:
                summary = build_demo(s)
                logins = add_demo_users(s, look_at=summary.look_at)
            elif not has_users:
                out.print("the database already holds partners; no demo added", highlight=False)
    url = served_url(host, port)
    out.print(f"Partner Center: {url}", highlight=False)
    if logins:
        out.print(f"Demo logins (password {DEMO_PASSWORD}):", highlight=False)
        for login in logins:
            out.print(f"  {login.email:<32} {login.role:<15} {login.partner}", highlight=False)
    elif demo:
        out.print(
            f"Demo logins from an earlier start: admin@demo.example, operator@demo.example, "
            f"viewer@demo.example, platform@demo.example (password {DEMO_PASSWORD})",
            highlight=False,
        )
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    if state.database_url:
        settings = settings.model_copy(update={"database_url": state.database_url})
    uvicorn.run(create_app(settings, state.engine()), host=host, port=port, log_level="warning")
