"""Reading labelled message files (CSV or JSONL) into a uniform in-memory table."""

from __future__ import annotations

import csv
import hashlib
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUPPORTED_SUFFIXES = (".csv", ".jsonl", ".json", ".ndjson")


class DataError(ValueError):
    """A data file is missing, unreadable or lacks a requested column."""


@dataclass
class LabelledData:
    """Texts plus one label column per head (``None`` where a row has no label)."""

    texts: list[str]
    labels: dict[str, list[str | None]] = field(default_factory=dict)
    extra: dict[str, list[object]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: Sequence[int]) -> LabelledData:
        return LabelledData(
            [self.texts[i] for i in idx],
            {h: [v[i] for i in idx] for h, v in self.labels.items()},
            {k: [v[i] for i in idx] for k, v in self.extra.items()},
        )

    def concat(self, other: LabelledData) -> LabelledData:
        heads = set(self.labels) | set(other.labels)
        keys = set(self.extra) | set(other.extra)
        return LabelledData(
            self.texts + other.texts,
            {h: self.labels.get(h, [None] * len(self)) + other.labels.get(h, [None] * len(other))
             for h in heads},
            {k: self.extra.get(k, [None] * len(self)) + other.extra.get(k, [None] * len(other))
             for k in keys},
        )

    def fingerprint(self) -> str:
        """sha256 over texts and labels: identifies the training data in a bundle manifest."""
        h = hashlib.sha256()
        for i, text in enumerate(self.texts):
            h.update(text.encode("utf-8"))
            for head in sorted(self.labels):
                h.update(b"\x1f" + str(self.labels[head][i]).encode("utf-8"))
            h.update(b"\x1e")
        return h.hexdigest()


def compose_text(text: str, subject: str | None = None) -> str:
    """The model reads the subject line and the body as one text."""
    text = text or ""
    subject = (subject or "").strip()
    return f"{subject}\n{text}" if subject else text


def normalise_for_dedup(text: str) -> str:
    """Case-, width- and whitespace-insensitive key used to deduplicate messages."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; directories expand to their CSV/JSONL files, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in SUPPORTED_SUFFIXES)
            if not files:
                raise DataError(f"{p}: directory has no .csv or .jsonl files")
            out.extend(files)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or directory")
    return out


def read_rows(path: Path) -> list[dict[str, object]]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as f:
                return list(csv.DictReader(f))
        if suffix in (".jsonl", ".ndjson", ".json"):
            rows = []
            with path.open(encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            row = json.loads(line)
                        except json.JSONDecodeError as exc:
                            raise DataError(f"{path}:{n}: invalid JSON ({exc.msg})") from exc
                        if not isinstance(row, dict):
                            raise DataError(f"{path}:{n}: expected a JSON object per line")
                        rows.append(row)
            return rows
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text") from exc
    raise DataError(f"{path}: unsupported file type {suffix!r} (use .csv or .jsonl)")


def load_labelled(
    paths: Iterable[str | Path],
    text_column: str,
    labels: dict[str, str] | None = None,
    subject_column: str | None = None,
    extra_columns: Sequence[str] = (),
) -> LabelledData:
    """Read files into :class:`LabelledData`; ``labels`` maps head name -> column name.

    Rows with an empty text are dropped; an empty label cell becomes ``None``.
    """
    labels = labels or {}
    data = LabelledData([], {h: [] for h in labels}, {c: [] for c in extra_columns})
    for path in expand_paths(paths):
        rows = read_rows(path)
        if not rows:
            continue
        columns = set().union(*(r.keys() for r in rows))
        wanted = [text_column, *labels.values(), *([subject_column] if subject_column else [])]
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {', '.join(missing)}; available: {', '.join(sorted(columns))}"
            )
        for row in rows:
            text = str(row.get(text_column) or "")
            subject = str(row.get(subject_column) or "") if subject_column else ""
            if not text.strip() and not subject.strip():
                continue
            data.texts.append(compose_text(text, subject))
            for head, col in labels.items():
                value = row.get(col)
                data.labels[head].append(None if value in (None, "") else str(value))
            for c in extra_columns:
                data.extra[c].append(row.get(c))
    return data
