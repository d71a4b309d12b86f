"""Extra ``triage`` subcommands (feedback export, retraining, registry, KB curation).

Each registers a subparser with ``set_defaults(func=...)``; the function returns an exit code.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the loop-closing commands to the ``triage`` parser."""
    _register_export_feedback(sub)
    _register_retrain(sub)
    _register_models(sub)
    _register_kb(sub)


# -- export-feedback ----------------------------------------------------------------------------
def _register_export_feedback(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "export-feedback",
        help="write agent feedback from the API database as JSONL training rows",
        description="One row per feedback event: text, department, urgency (the corrections), "
                    "ticket_id, request_id, created_at, plus the reply decision. Train on it with "
                    "`triage train --data FILE --text-column text --label department=department "
                    "--label urgency=urgency`. Feedback on messages whose text was not stored "
                    "(TRIAGE_STORE_RAW_TEXT off) is skipped and counted.",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="JSONL file to write")
    p.add_argument("--database-url", metavar="URL",
                   help="default: $TRIAGE_DATABASE_URL or sqlite:///var/triage.db")
    p.set_defaults(func=cmd_export_feedback)


def cmd_export_feedback(args: argparse.Namespace) -> int:
    import os
    import sys

    from api.settings import DEFAULT_DATABASE_URL, sqlite_path
    from api.storage import StorageError, export_feedback, open_storage
    from training.cli import UsageError

    url = args.database_url or os.environ.get("TRIAGE_DATABASE_URL") or DEFAULT_DATABASE_URL
    db = sqlite_path(url)
    if db is not None and not db.is_file():
        raise UsageError(f"no database at {db} (set --database-url or TRIAGE_DATABASE_URL)")
    try:
        storage = open_storage(url)
    except StorageError as exc:
        raise UsageError(str(exc)) from exc
    try:
        summary = export_feedback(storage, args.out)
    finally:
        storage.close()
    print(summary.describe(args.out), file=sys.stderr)
    return 0


# -- retrain ------------------------------------------------------------------------------------
def _registry_arg(p: argparse.ArgumentParser) -> None:
    from training.cli import DEFAULT_MODELS

    p.add_argument("--registry", default=str(DEFAULT_MODELS), metavar="DIR",
                   help=f"model registry: bundles plus CURRENT (default {DEFAULT_MODELS})")


def _register_retrain(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from training.retrain import RetrainConfig

    defaults = RetrainConfig()
    p = sub.add_parser(
        "retrain",
        help="train a candidate from the served bundle plus feedback; promote it if it passes the gate",
        description="Candidate = served bundle's training data + --data files + the agents' "
                    "corrections from the feedback log, deduplicated by normalised text (newer "
                    "labels win). The most recent corrections are held out; the candidate is "
                    "promoted only if it is not worse on the frozen set (within --tolerance) and "
                    "better on the held-out corrections. Writes an HTML report every run. A "
                    "'subject' column, where a file has one, is prepended to the text as in "
                    "`triage train --subject-column subject`.",
    )
    _registry_arg(p)
    p.add_argument("--data", action="append", default=[], metavar="PATH",
                   help="new labelled CSV/JSONL file or directory (repeatable)")
    p.add_argument("--text-column", default="text", metavar="COL",
                   help="text column in --data files (default: text)")
    p.add_argument("--label", action="append", default=[], metavar="HEAD=COL",
                   help="label column per head in --data files (default: HEAD=HEAD for every "
                        "head of the served model)")
    p.add_argument("--feedback", metavar="PATH_OR_URL",
                   help="feedback log: a file from `triage export-feedback`, or a database URL "
                        "(sqlite:///path.db) or path; default $TRIAGE_DATABASE_URL, else the "
                        "API's default database when it exists")
    p.add_argument("--frozen", action="append", default=[], metavar="PATH",
                   help="frozen evaluation set: columns text, optional subject, one per head "
                        "(default: data/seed/test when it exists)")
    p.add_argument("--tolerance", type=float, default=defaults.tolerance,
                   help=f"allowed frozen-set accuracy drop per head (default {defaults.tolerance})")
    p.add_argument("--holdout-fraction", type=float, default=defaults.holdout_fraction,
                   help="share of the most recent corrections held out for the gate "
                        f"(default {defaults.holdout_fraction})")
    p.add_argument("--report", metavar="DIR", help="report directory (default <registry>/reports/"
                                                   "<candidate version>)")
    p.add_argument("--version", help="candidate version (default: timestamp)")
    p.add_argument("--no-promote", action="store_true", help="build and gate only")
    p.add_argument("--discard-rejected", action="store_true",
                   help="delete a rejected candidate's bundle (default: keep it for inspection)")
    p.add_argument("--no-cache", action="store_true", help="do not use the embedding cache")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_retrain)


def cmd_retrain(args: argparse.Namespace) -> int:
    import json
    import logging

    from training.cli import REPO_ROOT, UsageError, _label_specs
    from training.feedback_io import default_feedback_source, read_feedback
    from training.registry import Registry
    from training.retrain import RetrainConfig, load_labelled_files, retrain
    from triage.bundle import read_manifest
    from triage.embedders import EmbeddingCache

    log = logging.getLogger("triage.cli")
    if not 0.0 <= args.holdout_fraction < 1.0:
        raise UsageError("--holdout-fraction must be in [0, 1)")
    if args.tolerance < 0:
        raise UsageError("--tolerance must be >= 0")
    registry = Registry(args.registry)
    current = registry.current()
    if current is None:
        raise UsageError(f"{registry.root}: no served version (no CURRENT file); "
                         "train a bundle there and run `triage models promote VERSION`")
    heads = sorted(read_manifest(registry.path(current)).get("label_sets", {}))  # type: ignore[arg-type]
    labels = _label_specs(args.label) or {h: h for h in heads}
    unknown = sorted(set(labels) - set(heads))
    if unknown:
        raise UsageError(f"served model has no head(s) {', '.join(unknown)}; it has "
                         f"{', '.join(heads)}")
    new_data = load_labelled_files(args.data, args.text_column, labels) if args.data else None
    frozen_paths = args.frozen or ([REPO_ROOT / "data" / "seed" / "test"]
                                   if (REPO_ROOT / "data" / "seed" / "test").is_dir() else [])
    if not frozen_paths:
        raise UsageError("no frozen evaluation set: pass --frozen PATH (data/seed/test not found)")
    frozen = load_labelled_files(frozen_paths, "text", {h: h for h in heads})
    source = args.feedback or default_feedback_source()
    feedback = read_feedback(source, heads) if source else None
    if feedback is None:
        log.warning("no feedback source (--feedback or TRIAGE_DATABASE_URL): without held-out "
                    "corrections the gate cannot promote the candidate")
    config = RetrainConfig(tolerance=args.tolerance, holdout_fraction=args.holdout_fraction,
                           promote=not args.no_promote, keep_rejected=not args.discard_rejected)
    cache = None if args.no_cache else EmbeddingCache()
    result = retrain(registry, new_data=new_data, feedback=feedback, frozen=frozen, config=config,
                     cache=cache, report_dir=args.report, version=args.version,
                     progress=not args.json)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    verdict = ("PROMOTED" if result.promoted else
               "passed the gate, not promoted (--no-promote)" if result.gate.passed else "REJECTED")
    print(f"candidate {result.candidate_version} (from {result.current_version}): {verdict}")
    for check in result.gate.checks:
        print(f"  [{'ok' if check['passed'] else 'FAIL'}] {check['detail']}")
    print(f"  data: {json.dumps(result.data)}")
    print(f"  seconds: {json.dumps(result.seconds)}")
    print(f"  report: {result.report}")
    return 0


# -- models -------------------------------------------------------------------------------------
def _register_models(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("models", help="list the registry's bundles, promote one, or roll back")
    msub = p.add_subparsers(dest="models_command", required=True)
    q = msub.add_parser("list", help="bundles with a manifest summary (* = served)")
    _registry_arg(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_models_list)
    q = msub.add_parser("promote", help="serve VERSION (atomic CURRENT write, logged to HISTORY)")
    q.add_argument("version")
    _registry_arg(q)
    q.add_argument("--reason", default="manual promotion")
    q.set_defaults(func=cmd_models_promote)
    q = msub.add_parser("rollback", help="serve again the version served before the current one")
    _registry_arg(q)
    q.add_argument("--reason", default="manual rollback")
    q.set_defaults(func=cmd_models_rollback)


def cmd_models_list(args: argparse.Namespace) -> int:
    import json

    from training.registry import Registry

    summaries = Registry(args.registry).list()
    if args.json:
        print(json.dumps([s.to_dict() for s in summaries], ensure_ascii=False))
        return 0
    if not summaries:
        print(f"{args.registry}: no bundles")
    for s in summaries:
        oof = " ".join(f"{h}={v}" for h, v in s.out_of_fold.items())
        gate = "" if s.gate is None else ("  gate: passed" if s.gate["passed"] else "  gate: rejected")
        print(f"{'*' if s.current else ' '} {s.version}  {s.created_at}  {s.encoder}  "
              f"rows={s.n_training_rows}  oof[{oof}]  parent={s.parent_version or '-'}{gate}")
    return 0


def _print_change(change: object, registry: str) -> None:
    if change is None:
        print(f"{registry}: already serving that version; nothing changed")
        return
    print(f"serving {change.to_version} (was {change.from_version or 'none'})")  # type: ignore[attr-defined]


def cmd_models_promote(args: argparse.Namespace) -> int:
    from training.registry import Registry

    _print_change(Registry(args.registry).promote(args.version, reason=args.reason), args.registry)
    return 0


def cmd_models_rollback(args: argparse.Namespace) -> int:
    from training.registry import Registry

    _print_change(Registry(args.registry).rollback(reason=args.reason), args.registry)
    return 0


# -- kb -----------------------------------------------------------------------------------------
def _register_kb(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("kb", help="knowledge-base curation from agent feedback")
    ksub = p.add_subparsers(dest="kb_command", required=True)
    q = ksub.add_parser("candidates",
                        help="edited replies grouped by article: candidate variants to review")
    q.add_argument("--feedback", metavar="PATH_OR_URL",
                   help="export file or database URL/path (default $TRIAGE_DATABASE_URL)")
    q.add_argument("--registry", metavar="DIR",
                   help="registry or bundle whose articles give titles and drop edits that "
                        "already match a reply (default: the repo's models/ when it is served)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_kb_candidates)


def cmd_kb_candidates(args: argparse.Namespace) -> int:
    import json

    from training.cli import DEFAULT_MODELS, UsageError
    from training.feedback_io import default_feedback_source, read_feedback
    from training.kb_feedback import edit_candidates
    from triage.bundle import BundleError

    source = args.feedback or default_feedback_source()
    if not source:
        raise UsageError("no feedback source: give --feedback PATH_OR_URL or set "
                         "TRIAGE_DATABASE_URL")
    feedback = read_feedback(source)
    articles = None
    try:
        articles = _served_articles(args.registry or DEFAULT_MODELS)
    except BundleError:
        if args.registry:
            raise
    candidates = edit_candidates(feedback.decisions, articles)
    if args.json:
        print(json.dumps([c.to_dict() for c in candidates], ensure_ascii=False))
        return 0
    if not candidates:
        print(f"no edited replies in {source}")
    for c in candidates:
        title = f" ({c.article_title})" if c.article_title else ""
        print(f"{c.article_id}{title}: {c.count} edit(s), departments "
              f"{', '.join(c.departments) or '-'}, last {c.last_seen or '-'}")
        print("    " + c.final_text.replace("\n", "\n    "))
    return 0


def _served_articles(path: object) -> dict[str, object]:
    """Articles of the served bundle's KB index, read from its JSON (no encoder needed)."""
    import json
    from pathlib import Path

    from triage.bundle import KB_DIR, BundleError, resolve_bundle
    from triage.kb import ARTICLES_FILE, Article

    bundle = resolve_bundle(Path(str(path)))
    f = bundle / KB_DIR / ARTICLES_FILE
    if not f.is_file():
        raise BundleError(f"{bundle}: no knowledge-base index")
    return {a.id: a for a in (Article.from_dict(d) for d in json.loads(f.read_text()))}
