"""``creditline serve``: the ASGI app on uvicorn, in one process or several."""

from __future__ import annotations

import logging
import os

import typer

from creditline.cli import app
from creditline.cli.common import out, refuse, state


def served_url(host: str, port: int) -> str:
    """The address people type to reach ``host``:``port`` (IPv6 in brackets)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="The address to listen on."),
    port: int = typer.Option(8000, "--port", help="The port to listen on."),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="The number of server processes (PostgreSQL only; each keeps its own "
        "connection pool).",
    ),
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Do not deliver alarms and webhooks from this process."
    ),
) -> None:
    """Serve the REST API, the Tencent-compatible endpoint and the console.

    The address they answer at is printed first."""
    import uvicorn

    from creditline.config import get_settings
    from creditline.db import is_postgres

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    if state.database_url:
        settings = settings.model_copy(update={"database_url": state.database_url})
    engine = state.engine(wait=True)  # a database still starting is waited for
    url = served_url(host, port)
    if workers == 1:
        from creditline.app import create_app, settled

        out.print(f"Serving creditline at {url} (Ctrl-C stops it)", highlight=False)
        uvicorn.run(
            settled(create_app(settings, engine, worker=not no_worker)),
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
    out.print(
        f"Serving creditline at {url} from {workers} processes (Ctrl-C stops it)",
        highlight=False,
    )
    uvicorn.run(
        "creditline.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="info",
    )
