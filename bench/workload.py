"""What the serving and cost benchmarks share: the fixed message set, percentiles, machine facts.

Messages come from ``data/seed/test`` (all languages), interleaved language by language so that
every slice of the list has every language in it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SEED_TEST = REPO / "data" / "seed" / "test"
SEED_TRAIN = REPO / "data" / "seed" / "train"
RESULTS = REPO / "bench" / "results"


class MissingRequirement(RuntimeError):
    """Something the benchmark needs is not installed or not in the checkout."""


def seed_messages(directory: Path = SEED_TEST) -> list[dict[str, str]]:
    """Rows ``{"text", "subject", "language"}``, languages interleaved round-robin."""
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise MissingRequirement(f"no seed data in {directory.relative_to(REPO)}/*.jsonl")
    per_lang = []
    for f in files:
        rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        per_lang.append([{"text": r["text"], "subject": r.get("subject") or "",
                          "language": r.get("language", f.stem)} for r in rows])
    out: list[dict[str, str]] = []
    for i in range(max(len(rows) for rows in per_lang)):
        out.extend(rows[i] for rows in per_lang if i < len(rows))
    return out


def percentiles(seconds: list[float] | np.ndarray) -> dict[str, float]:
    """p50/p95/p99/mean in milliseconds."""
    a = np.asarray(seconds, dtype=np.float64) * 1000
    if not len(a):
        return {"n": 0}
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 3),
            "p95_ms": round(float(np.percentile(a, 95)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3),
            "mean_ms": round(float(a.mean()), 3)}


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def proc_status_kib(pid: int | str, field: str) -> int | None:
    """A ``/proc/<pid>/status`` memory field (``VmHWM``, ``VmRSS``) in KiB; None off Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def shown_path(path: Path) -> str:
    """``path`` relative to the repository when inside it (results are committed)."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(resolved)


def report(name: str, compute: Callable[[], dict[str, Any]], summary: Callable[[dict[str, Any]], str],
           as_json: bool, write: str | None = None) -> int:
    """A benchmark's command-line ending: run ``compute``, print JSON or ``summary``; exit code.

    A :class:`MissingRequirement` becomes a one-line "cannot run" message (a JSON ``error``
    object with ``--json``) and exit code 2. ``write`` names the ``bench/results`` file.
    """
    try:
        out = compute()
    except MissingRequirement as exc:
        msg = f"{name}: cannot run: {exc}"
        print(json.dumps({"error": msg}) if as_json else msg,
              file=sys.stdout if as_json else sys.stderr)
        return 2
    if write:
        write_result(write, out)
    print(json.dumps(out) if as_json else summary(out))
    return 0


def write_result(name: str, result: dict[str, object]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
