"""Never-miss urgency signals: multilingual patterns that set a floor under the learned urgency.

The patterns live in ``resources/urgency_signals.yaml`` (one block per signal and language) so
reviewers can extend them without touching code. Each pattern carries the literal strings one of
which any match must contain; most messages contain none, so most regexes never run.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

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
class _Pattern:
    regex: re.Pattern[str]
    # A match contains at least one of these (None: no such set was found, always search).
    literals: tuple[str, ...] | None


@dataclass(frozen=True)
class _Signal:
    name: str
    floor: str
    patterns: dict[str, tuple[_Pattern, ...]]


class UrgencySignals:
    """Finds never-miss signals (legal threat, fraud/takeover, chargeback, safety, data protection)."""

    def __init__(self, path: str | Path = SIGNALS_FILE) -> None:
        self.path = Path(path)
        self._signals = _load(str(self.path))
        # literal -> the (signal, language, pattern) positions that need it; one pass of
        # substring tests over ~1,000 literals then names the few regexes worth running
        self._by_literal: dict[str, list[tuple[int, str, int]]] = {}
        self._unfiltered: list[tuple[int, str, int]] = []
        for si, sig in enumerate(self._signals):
            for lang, patterns in sig.patterns.items():
                for pi, p in enumerate(patterns):
                    if p.literals is None:
                        self._unfiltered.append((si, lang, pi))
                    for lit in p.literals or ():
                        self._by_literal.setdefault(lit, []).append((si, lang, pi))

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._signals]

    def languages(self) -> set[str]:
        return {lang for s in self._signals for lang in s.patterns}

    def find(self, text: str) -> list[SignalHit]:
        """All signals whose pattern matches, in any language (customers mix languages)."""
        lowered = text.lower()
        todo: dict[tuple[int, str], set[int]] = {}
        for si, lang, pi in self._unfiltered:
            todo.setdefault((si, lang), set()).add(pi)
        for lit, owners in self._by_literal.items():
            if lit in lowered:
                for si, lang, pi in owners:
                    todo.setdefault((si, lang), set()).add(pi)
        hits = []
        for si, sig in enumerate(self._signals):
            for lang, patterns in sig.patterns.items():
                candidates = todo.get((si, lang))
                if candidates and any(patterns[pi].regex.search(lowered) for pi in sorted(candidates)):
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
        patterns = {lang: tuple(_compile(p) for p in pats)
                    for lang, pats in spec["patterns"].items()}
        signals.append(_Signal(name, floor, patterns))
    return signals


def _compile(pattern: str) -> _Pattern:
    # Patterns are lower case and run on lower-cased text, so no IGNORECASE: it made every
    # search ~1.7x slower.
    regex = re.compile(pattern)
    return _Pattern(regex, required_literals(pattern))


def required_literals(pattern: str) -> tuple[str, ...] | None:
    """Strings one of which every match of ``pattern`` contains, or None if none were found.

    Reads the parsed pattern: a run of literal characters (zero-width assertions such as ``\\b``
    do not interrupt it), an alternation whose every branch has such a set, or a group repeated
    at least once. Of all candidate sets the one with the longest shortest string is chosen.
    """
    try:
        parser = importlib.import_module("re._parser")  # private, so imported defensively
        parsed = parser.parse(pattern)
    except Exception:  # noqa: BLE001 - without the parser, the pattern is simply always searched
        return None
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    found = _sequence_literals(list(parsed), importlib.import_module("re._constants"))
    return tuple(sorted(found)) if found else None


def _sequence_literals(items: Iterable[tuple[Any, Any]], c: Any) -> frozenset[str] | None:
    candidates: list[frozenset[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            candidates.append(frozenset(["".join(run)]))
            run.clear()

    def walk(seq: Iterable[tuple[Any, Any]]) -> None:
        for op, av in seq:
            if op is c.LITERAL:
                run.append(chr(av))
            elif op in (c.AT, c.ASSERT, c.ASSERT_NOT):
                continue  # zero-width: the characters around it are still adjacent
            elif op is c.SUBPATTERN:
                _, add_flags, _, sub = av
                if add_flags & re.IGNORECASE:
                    close_run()
                    continue
                walk(sub)
            elif op is c.BRANCH:
                close_run()
                branches = [_sequence_literals(b, c) for b in av[1]]
                if all(branches):
                    candidates.append(frozenset().union(*branches))  # type: ignore[arg-type]
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
                close_run()
                low, _, item = av
                inner = _sequence_literals(item, c) if low >= 1 else None
                if inner:
                    candidates.append(inner)
            else:
                close_run()

    walk(items)
    close_run()
    if not candidates:
        return None
    return max(candidates, key=lambda s: (min(len(x) for x in s), -len(s)))
