"""API keys and roles: ``agent`` analyses and gives feedback; ``admin`` also edits the KB and
reloads the model.

Keys are compared as SHA-256 digests with :func:`hmac.compare_digest` against every configured key
(no early exit), and a key never appears in a log line or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from .settings import ConfigError, Settings

log = logging.getLogger(__name__)

ADMIN_KEY_FILE = "admin.key"
ROLE_RANK = {"agent": 1, "admin": 2}


@dataclass(frozen=True)
class Principal:
    role: str
    key_id: str  # first hex digits of the key's SHA-256: enough to tell keys apart in logs

    def may(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class KeyRing:
    def __init__(self, keys: dict[str, str], disabled: bool = False) -> None:
        self.disabled = disabled
        self._entries = [(_digest(k), role) for k, role in keys.items()]

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, token: str | None) -> Principal | None:
        if self.disabled:
            return Principal("admin", "auth-disabled")
        if not token:
            return None
        digest = _digest(token)
        found: str | None = None
        for known, role in self._entries:
            if hmac.compare_digest(known, digest):
                found = role
        return Principal(found, digest.hex()[:8]) if found else None

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """Configured keys; with none and auth not disabled, the generated admin key."""
        keys = settings.api_key_roles()
        if settings.auth_disabled:
            log.warning("authentication is disabled (TRIAGE_AUTH_DISABLED=true): "
                        "every caller is admin")
            return cls({}, disabled=True)
        if not keys:
            keys = {generated_admin_key(settings): "admin"}
        return cls(keys)


def generated_admin_key(settings: Settings) -> str:
    """Read ``<db dir>/admin.key``, creating it (mode 600) and printing it once on first start."""
    db = settings.sqlite_path()
    if db is None:
        raise ConfigError("no API keys configured: set TRIAGE_API_KEYS or TRIAGE_API_KEYS_FILE")
    path = db.parent / ADMIN_KEY_FILE
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if len(key) < 16:
            raise ConfigError(f"{path}: not a usable key; delete it to generate a new one")
        log.info("no API keys configured; using the generated admin key in %s", path)
        return key
    key = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
        f.flush()
        os.fsync(f.fileno())
    # Shown once, on purpose, to the operator starting the service; never logged.
    sys.stderr.write(
        "\nsupport-triage: no API keys configured, so an admin key was generated and stored in\n"
        f"  {Path(path).resolve()} (mode 600):\n\n  {key}\n\n"
        "Send it as 'Authorization: Bearer <key>'. Configure keys with TRIAGE_API_KEYS or\n"
        "TRIAGE_API_KEYS_FILE ('key:role' per line, role agent or admin).\n\n"
    )
    sys.stderr.flush()
    return key
