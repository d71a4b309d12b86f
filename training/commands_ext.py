"""Extra ``triage`` subcommands (feedback export, retraining, registry, KB curation).

Each registers a subparser with ``set_defaults(func=...)``; the function returns an exit code.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the loop-closing commands to the ``triage`` parser."""
