"""Model registry: immutable versioned bundles in one directory and a pointer to the served one.

Layout::

    models/<version>/        a bundle (see :mod:`triage.bundle`); never modified once written
    models/CURRENT           the served version's name; replaced atomically (temp file + os.replace)
    models/HISTORY.jsonl     one line per pointer change: timestamp, action, from, to, reason

A running API polls ``CURRENT`` and swaps services when it changes, so a promotion or rollback
needs no restart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from triage.bundle import (
    CURRENT_FILE,
    MANIFEST_FILE,
    BundleError,
    check_compatible,
    read_manifest,
)

HISTORY_FILE = "HISTORY.jsonl"
LOCK_FILE = ".registry.lock"


class RegistryError(BundleError):
    """A registry operation cannot be done (unknown version, nothing to roll back to, ...)."""


@dataclass
class VersionSummary:
    """One bundle in the registry, summarised from its manifest."""

    version: str
    created_at: str
    encoder: str
    n_training_rows: int
    heads: list[str]
    parent_version: str | None
    current: bool
    out_of_fold: dict[str, float]
    gate: dict[str, object] | None

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class PointerChange:
    """A line of ``HISTORY.jsonl``."""

    timestamp: str
    action: str
    from_version: str | None
    to_version: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"timestamp": self.timestamp, "action": self.action, "from": self.from_version,
                "to": self.to_version, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> PointerChange:
        return cls(str(d.get("timestamp", "")), str(d.get("action", "promote")),
                   None if d.get("from") is None else str(d["from"]), str(d["to"]),
                   str(d.get("reason", "")))


def _write_atomic(path: Path, text: str) -> None:
    """Readers see the old content or the new one, never a partial file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class Registry:
    """A directory of immutable bundles plus the ``CURRENT`` pointer and its history."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- reading ----------------------------------------------------------------------------
    def path(self, version: str) -> Path:
        """The bundle directory of ``version`` (which must exist)."""
        if not version or "/" in version or "\\" in version or version.startswith("."):
            raise RegistryError(f"{version!r} is not a version name")
        p = self.root / version
        if not (p / MANIFEST_FILE).is_file():
            known = ", ".join(self.versions()) or "none"
            raise RegistryError(f"{self.root}: no bundle {version!r} (versions: {known})")
        return p

    def versions(self) -> list[str]:
        """Bundle names, oldest first (by manifest ``created_at``, then name)."""
        if not self.root.is_dir():
            return []
        found = []
        for p in self.root.iterdir():
            if p.name.startswith(".") or p.name.endswith(".partial") or not p.is_dir():
                continue
            if (p / MANIFEST_FILE).is_file():
                try:
                    created = str(read_manifest(p).get("created_at", ""))
                except BundleError:
                    created = ""
                found.append((created, p.name))
        return [name for _, name in sorted(found)]

    def current(self) -> str | None:
        """The served version, or None when the registry has no ``CURRENT`` pointer."""
        try:
            version = (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return version or None

    def summary(self, version: str) -> VersionSummary:
        m = read_manifest(self.path(version))
        metrics = m.get("metrics") or {}
        oof = metrics.get("out_of_fold", {}) if isinstance(metrics, dict) else {}
        gate = metrics.get("gate") if isinstance(metrics, dict) else None
        return VersionSummary(
            version=version,
            created_at=str(m.get("created_at", "")),
            encoder=str(m.get("encoder", "")),
            n_training_rows=int(m.get("n_training_rows", 0)),  # type: ignore[call-overload]
            heads=sorted(m.get("label_sets", {})),  # type: ignore[arg-type]
            parent_version=m.get("parent_version"),  # type: ignore[arg-type]
            current=version == self.current(),
            out_of_fold={h: v.get("accuracy") for h, v in oof.items()},  # type: ignore[union-attr]
            gate={"passed": gate.get("passed"), "reasons": gate.get("reasons")}
            if isinstance(gate, dict) else None,
        )

    def list(self) -> list[VersionSummary]:
        return [self.summary(v) for v in self.versions()]

    def history(self) -> list[PointerChange]:
        path = self.root / HISTORY_FILE
        if not path.is_file():
            return []
        out = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    out.append(PointerChange.from_dict(json.loads(line)))
                except (json.JSONDecodeError, KeyError) as exc:
                    raise RegistryError(f"{path}:{n}: malformed history line ({exc})") from exc
        return out

    def served_stack(self) -> list[str]:
        """Versions served so far with rollbacks undone: the top is what should be served now."""
        stack: list[str] = []
        for change in self.history():
            if change.action == "rollback":
                while stack and stack[-1] != change.to_version:
                    stack.pop()
                if not stack:
                    stack.append(change.to_version)
            else:
                if not stack and change.from_version:
                    stack.append(change.from_version)
                stack.append(change.to_version)
        return stack

    # -- changing the pointer ---------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise pointer changes between processes (POSIX advisory lock)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "a+") as f:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX
                yield
                return
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _point(self, version: str, action: str, reason: str) -> PointerChange | None:
        bundle = self.path(version)
        check_compatible(read_manifest(bundle), bundle)
        previous = self.current()
        if previous == version:
            return None
        _write_atomic(self.root / CURRENT_FILE, version + "\n")
        change = PointerChange(dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                               action, previous, version, reason)
        with open(self.root / HISTORY_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(change.to_dict(), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return change

    def promote(self, version: str, reason: str = "manual promotion") -> PointerChange | None:
        """Serve ``version``; returns None when it already is the served one."""
        with self._locked():
            return self._point(version, "promote", reason)

    def rollback(self, reason: str = "rollback") -> PointerChange:
        """Serve again the version that was served before the current one."""
        with self._locked():
            current = self.current()
            stack = self.served_stack()
            if current in stack:
                stack = stack[: len(stack) - stack[::-1].index(current) - 1]
            if not stack:
                raise RegistryError(f"{self.root}: no earlier served version to roll back to")
            target = stack[-1]
            change = self._point(target, "rollback", reason)
            assert change is not None  # target != current by construction
            return change
