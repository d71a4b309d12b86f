"""Never-miss urgency signals: multilingual patterns that set a floor under the learned urgency.

The patterns live in ``resources/urgency_signals.yaml`` (one block per signal and language) so
reviewers can extend them without touching code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

SIGNALS_FILE = Path(__file__).parent / "resources" / "urgency_signals.yaml"
URGENCY_LEVELS = ("low", "normal", "high", "urgent")


@dataclass(frozen=True)
class SignalHit:
    signal: str
    floor: str
    language: str

    def to_dict(self) -> dict[str, str]:
        return {"signal": self.signal, "floor": self.floor, "language": self.language}


@dataclass(frozen=True)
class _Signal:
    name: str
    floor: str
    patterns: dict[str, re.Pattern[str]]


class UrgencySignals:
    """Finds never-miss signals (legal threat, fraud/takeover, chargeback, safety, data protection)."""

    def __init__(self, path: str | Path = SIGNALS_FILE) -> None:
        self.path = Path(path)
        self._signals = _load(str(self.path))

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._signals]

    def languages(self) -> set[str]:
        return {lang for s in self._signals for lang in s.patterns}

    def find(self, text: str) -> list[SignalHit]:
        """All signals whose pattern matches, in any language (customers mix languages)."""
        hits = []
        lowered = text.lower()
        for sig in self._signals:
            for lang, pattern in sig.patterns.items():
                if pattern.search(lowered):
                    hits.append(SignalHit(sig.name, sig.floor, lang))
                    break
        return hits

    @staticmethod
    def apply_floor(label: str, hits: list[SignalHit], levels: tuple[str, ...] = URGENCY_LEVELS) -> str:
        """Raise ``label`` to the highest floor among ``hits`` (labels outside ``levels`` pass)."""
        if label not in levels:
            return label
        rank = levels.index(label)
        for hit in hits:
            if hit.floor in levels:
                rank = max(rank, levels.index(hit.floor))
        return levels[rank]


@lru_cache(maxsize=8)
def _load(path: str) -> list[_Signal]:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    signals = []
    for name, spec in raw["signals"].items():
        floor = spec["floor"]
        if floor not in URGENCY_LEVELS:
            raise ValueError(f"{path}: signal {name!r} has unknown floor {floor!r}")
        patterns = {
            lang: re.compile("|".join(f"(?:{p})" for p in pats), re.IGNORECASE)
            for lang, pats in spec["patterns"].items()
        }
        signals.append(_Signal(name, floor, patterns))
    return signals
