"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from creditline.errors import InvalidInput

_hasher = PasswordHasher()

MIN_LENGTH = 10
MAX_LENGTH = 1000

#: Verified against when the address is unknown, so a wrong address costs the same time
#: as a wrong password and the response time does not tell which addresses exist.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


def check_strength(password: str) -> str:
    """A password as accepted: 10-1000 characters, not only spaces."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"the password needs at least {MIN_LENGTH} characters", param="password")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"the password is longer than {MAX_LENGTH} characters", param="password")
    if not password.strip():
        raise InvalidInput("the password must not be only spaces", param="password")
    return password


def hash_password(password: str) -> str:
    """The argon2id hash of an acceptable password."""
    return _hasher.hash(check_strength(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (None: an unknown user; still hashed)."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(stored_hash)
