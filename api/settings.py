"""Service configuration: one pydantic-settings class read from ``TRIAGE_*`` variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "sqlite:///var/triage.db"
ROLES = ("agent", "admin")
MIN_KEY_CHARS = 16


class ConfigError(ValueError):
    """The configuration cannot work; the message names the setting and what to do."""


class Settings(BaseSettings):
    """Every knob of the HTTP service. Each field ``x`` is read from ``TRIAGE_X``.

    Attributes:
        model_dir: a bundle directory, or a registry (directory with a ``CURRENT`` file) whose
            pointer is watched and followed.
        models_root: ``POST /v1/admin/reload`` only loads bundles under this directory (default:
            the registry itself, or the bundle's parent directory).
        database_url: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``.
        api_keys: ``key1:admin,key2:agent``; keys must be at least 16 characters.
        api_keys_file: a file with one ``key:role`` per line (``#`` starts a comment).
        auth_disabled: serve without API keys (only behind another authenticating proxy).
        store_raw_text: keep the (redacted) message text in the decision log, which is what
            ``triage export-feedback`` needs to turn corrections into training rows.
        batch_window_ms, max_batch_size, queue_size: micro-batching of concurrent requests.
        reload_poll_seconds: how often a registry's ``CURRENT`` is checked (0 turns it off).
        max_body_bytes: larger request bodies get 413.
    """

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", extra="ignore",
                                      protected_namespaces=())

    model_dir: Path = REPO_ROOT / "models"
    models_root: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    database_url: str = DEFAULT_DATABASE_URL
    api_keys: SecretStr | None = None
    api_keys_file: Path | None = None
    auth_disabled: bool = False
    store_raw_text: bool = False
    batch_window_ms: float = Field(2.0, ge=0, le=1000)
    max_batch_size: int = Field(32, ge=1, le=1024)
    queue_size: int = Field(256, ge=1, le=100_000)
    reload_poll_seconds: float = Field(2.0, ge=0)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    log_level: str = "info"

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("use sqlite:///path/to/triage.db (PostgreSQL is not implemented yet)")
        return v

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, v: str) -> str:
        if v.lower() not in ("critical", "error", "warning", "info", "debug"):
            raise ValueError("use critical, error, warning, info or debug")
        return v.lower()

    def api_key_roles(self) -> dict[str, str]:
        """Configured keys mapped to roles; raises :class:`ConfigError` on any malformed entry."""
        entries: list[tuple[str, str]] = []
        if self.api_keys is not None:
            for item in self.api_keys.get_secret_value().split(","):
                if item.strip():
                    entries.append(("TRIAGE_API_KEYS", item.strip()))
        if self.api_keys_file is not None:
            try:
                lines = self.api_keys_file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"TRIAGE_API_KEYS_FILE: cannot read {self.api_keys_file} "
                                  f"({exc.strerror})") from exc
            for n, line in enumerate(lines, 1):
                line = line.split("#", 1)[0].strip()
                if line:
                    entries.append((f"{self.api_keys_file}:{n}", line))
        keys: dict[str, str] = {}
        for where, entry in entries:
            key, sep, role = entry.rpartition(":")
            key, role = key.strip(), role.strip()
            # never echo the key itself in an error message
            if not sep or not key:
                raise ConfigError(f"{where}: expected key:role, e.g. <key>:admin")
            if role not in ROLES:
                raise ConfigError(f"{where}: unknown role {role!r}; use agent or admin")
            if len(key) < MIN_KEY_CHARS:
                raise ConfigError(f"{where}: a key must be at least {MIN_KEY_CHARS} characters")
            keys[key] = role
        return keys

    def sqlite_path(self) -> Path | None:
        return sqlite_path(self.database_url)

    def reload_root(self) -> Path:
        if self.models_root is not None:
            return self.models_root.resolve()
        d = self.model_dir.resolve()
        from triage.bundle import CURRENT_FILE

        return d if (d / CURRENT_FILE).is_file() else d.parent

    def check(self) -> Settings:
        """Validate the settings that need more than one field; returns ``self``."""
        self.api_key_roles()
        if self.database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("TRIAGE_DATABASE_URL: PostgreSQL storage is not implemented yet; "
                              "use sqlite:///path/to/triage.db")
        return self


def sqlite_path(database_url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names (``sqlite:////abs`` is absolute), else None."""
    if not database_url.startswith("sqlite:///"):
        return None
    rest = database_url[len("sqlite:///"):]
    if not rest:
        raise ConfigError("TRIAGE_DATABASE_URL: sqlite:/// needs a file path")
    return Path(rest)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (plus ``overrides``), with one clear error message."""
    try:
        return Settings(**overrides).check()  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"TRIAGE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
