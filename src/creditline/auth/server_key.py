"""The server key that encrypts API secrets at rest.

Secrets must be recoverable (a Tencent-style signature is an HMAC keyed by the secret, so
the server has to recompute it), hence encrypted rather than hashed. The key comes from
``CREDITLINE_SECRET_KEY``; on an embedded SQLite database without it, one is generated once
into ``<database file>.secret-key``, created readable only by its owner (mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from creditline.config import Settings, get_settings
from creditline.errors import CreditlineError

_cache: dict[tuple[str, str | None], Fernet] = {}
_lock = threading.Lock()


class ServerKeyMissing(CreditlineError):
    """No server key is configured and none can be generated for this database."""

    code = "server_key_missing"
    kind = "server"


def key_file(engine: Engine) -> Path | None:
    """Where the generated key of a SQLite file database lives; None for other databases."""
    url = make_url(str(engine.url))
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).with_name(Path(url.database).name + ".secret-key")


def _fernet_from_text(text: str) -> Fernet:
    # Any long random text is accepted: it is stretched to the 32 bytes Fernet needs.
    digest = hashlib.sha256(b"creditline api secrets\x00" + text.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _read_or_create(path: Path) -> str:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip()


def cipher(engine: Engine, settings: Settings | None = None) -> Fernet:
    """The cipher for API secrets of ``engine``'s database."""
    settings = settings or get_settings()
    cache_key = (str(engine.url), settings.secret_key)
    with _lock:
        found = _cache.get(cache_key)
        if found is not None:
            return found
        if settings.secret_key:
            made = _fernet_from_text(settings.secret_key)
        else:
            path = key_file(engine)
            if path is None:
                raise ServerKeyMissing(
                    "set CREDITLINE_SECRET_KEY to a long random value: API secrets are "
                    "encrypted with it"
                )
            made = _fernet_from_text(_read_or_create(path))
        _cache[cache_key] = made
        return made


def encrypt(engine: Engine, secret: str) -> str:
    """``secret`` encrypted with the server key, as text."""
    return cipher(engine).encrypt(secret.encode()).decode()


def decrypt(engine: Engine, token: str) -> str:
    """The secret back from its encrypted form; refuses a token made with another key."""
    try:
        return cipher(engine).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ServerKeyMissing(
            "an API secret cannot be decrypted: the server key has changed"
        ) from None
