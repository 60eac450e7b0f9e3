"""``creditline serve``: the ASGI app on uvicorn."""

from __future__ import annotations

import logging

import typer
import uvicorn

from creditline.app import create_app
from creditline.cli import app
from creditline.cli.common import state
from creditline.config import get_settings


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Do not deliver alarms and webhooks from this process."
    ),
) -> None:
    """Serve the REST API (and, later, the console and the Tencent-compatible endpoint)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    if state.database_url:
        settings = settings.model_copy(update={"database_url": state.database_url})
    uvicorn.run(
        create_app(settings, state.engine(), worker=not no_worker),
        host=host,
        port=port,
        access_log=False,  # creditline writes its own structured request log
        log_level="info",
    )
