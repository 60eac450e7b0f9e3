"""Regenerate the console's screenshots from the demo data.

    python docs/screenshots/make.py

Builds the demo in a fresh SQLite file in a temporary folder, serves the console on a free
port, and photographs each page with Debian's Chromium (``CREDITLINE_CHROMIUM`` to use
another) into this folder: at a laptop's 1366 x 768, and My Customers and Setting Credit
again at a phone's 390 px.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import select

from creditline.app import create_app
from creditline.cli.console import DEMO_PASSWORD, add_demo_users
from creditline.db import make_engine, transaction
from creditline.db.migrate import upgrade
from creditline.db.tables import Customer
from creditline.demo import build_demo

HERE = Path(__file__).resolve().parent
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
CHROMIUM = os.environ.get("CREDITLINE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _login(page: Page, email: str) -> None:
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def _shot(page: Page, name: str, path: str | None = None) -> None:
    if path is not None:
        page.goto(path)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(HERE / f"{name}.png"), full_page=False)
    print(f"  {name}.png")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'demo.db'}")
        upgrade(engine)
        with transaction(engine) as s:
            summary = build_demo(s)
            add_demo_users(s, look_at=summary.look_at)
        with transaction(engine) as s:
            hot = s.execute(
                select(Customer.uin)
                .where(Customer.partner_id == summary.look_at, Customer.total_credit > 0)
                .order_by((Customer.consumed * 100 / Customer.total_credit).desc())
                .limit(3)
            ).scalars()
            hot_uins = list(hot)
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(engine=engine, worker=False),
                host="127.0.0.1",
                port=port,
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        bulk_csv = HERE / "bulk-example.csv"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                context = browser.new_context(base_url=f"http://127.0.0.1:{port}", viewport=LAPTOP)
                page = context.new_page()
                _shot(page, "01-login", "/login")
                _login(page, "admin@demo.example")
                _shot(page, "02-dashboard", "/")
                _shot(page, "03-my-customers", "/customers?sort=utilisation&dir=desc")
                _shot(page, "04-setting-credit", f"/customers/{hot_uins[-1]}/credit")
                page.fill("#amount", "250.00")
                page.fill("input[name=remark]", "monthly top-up")
                page.click("text=OK")
                _shot(page, "05-credit-allocated")
                _shot(page, "06-customer-detail", f"/customers/{hot_uins[0]}")
                _shot(page, "07-allocation-records", "/records")
                _shot(page, "08-message-centre", "/messages")
                _shot(page, "09-settings", "/settings")
                page.goto("/settings/notifications")
                page.fill("input[name=url]", "https://hooks.northwind.example/credit")
                page.fill("input[name=description]", "finance system")
                page.click("text=Add webhook")
                _shot(page, "14-notifications")
                page.goto("/applications")
                page.fill("input[name=amount]", "50000.00")
                page.fill("input[name=reason]", "new enterprise customers in Q1")
                page.click("text=Send application")
                _shot(page, "15-credit-applications")
                page.goto("/bulk")
                bulk_csv.write_text(
                    "customer_uin,amount,remark\n"
                    + "".join(f"{uin},100.00,quarterly\n" for uin in hot_uins)
                )
                page.set_input_files("input[type=file]", str(bulk_csv))
                page.click("text=Preview")
                _shot(page, "10-bulk-preview")
                _shot(page, "11-sub-resellers", "/distributors")
                page.click("text=Log out")
                _login(page, "platform@demo.example")
                _shot(page, "12-platform-partners", "/platform/partners")
                _shot(page, "13-platform-partner", f"/platform/partners/{summary.look_at}")
                _shot(page, "16-platform-applications", "/platform/applications")
                phone = browser.new_context(
                    base_url=f"http://127.0.0.1:{port}",
                    viewport=PHONE,
                    device_scale_factor=2,
                    is_mobile=True,
                    has_touch=True,
                ).new_page()
                _login(phone, "admin@demo.example")
                _shot(phone, "17-my-customers-phone", "/customers?sort=utilisation&dir=desc")
                _shot(phone, "18-setting-credit-phone", f"/customers/{hot_uins[-1]}/credit")
                browser.close()
        finally:
            bulk_csv.unlink(missing_ok=True)
            server.should_exit = True
            thread.join(timeout=30)
            engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
