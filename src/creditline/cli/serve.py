"""``creditline serve``: the ASGI app on uvicorn, in one process or several."""

from __future__ import annotations

import logging
import os

import typer
import uvicorn

from creditline.app import create_app
from creditline.cli import app
from creditline.cli.common import refuse, state
from creditline.config import get_settings
from creditline.db import is_postgres


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="Server processes (PostgreSQL only; each keeps its own connection pool).",
    ),
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Do not deliver alarms and webhooks from this process."
    ),
) -> None:
    """Serve the REST API and the Tencent-compatible endpoint."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    if state.database_url:
        settings = settings.model_copy(update={"database_url": state.database_url})
    engine = state.engine(wait=True)  # a database still starting is waited for
    if workers == 1:
        uvicorn.run(
            create_app(settings, engine, worker=not no_worker),
            host=host,
            port=port,
            access_log=False,  # creditline writes its own structured request log
            log_level="info",
        )
        return
    if not is_postgres(engine):
        # SQLite takes one writer at a time: more processes only queue on its file lock
        # (and each would race to create the schema), so the embedded default stays single.
        refuse("--workers above 1 needs PostgreSQL; SQLite serves from one process")
    engine.dispose()  # each worker process opens its own pool
    # The worker processes build the app from the environment, so hand them the URL.
    os.environ["CREDITLINE_DATABASE_URL"] = settings.database_url
    os.environ["CREDITLINE_SERVE_DELIVERY"] = "0" if no_worker else "1"
    uvicorn.run(
        "creditline.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="info",
    )
