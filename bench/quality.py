"""Quality benchmark: the project against a TF-IDF + logistic-regression baseline, same splits, one run.

    python -m bench.quality --json                 # Banking77, Bitext, seed held-out split
    python -m bench.quality --only seed            # one of: banking77, bitext, seed, bitext-kb

Banking77 and Bitext come from ../shared/data (not in the repository); the project is trained and
evaluated through the `triage` CLI exactly as a data scientist would run it. Bitext has no
official split, so it is split 80/20, stratified by category, with a fixed seed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results"


def _need(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"bench.quality: {path} is missing; the external datasets live in ../shared/data "
                 "beside the repository (see README, 'Data')")
    return path


def _cli(args: list[str]) -> dict[str, object]:
    """Run a `triage` subcommand in-process and parse its JSON output."""
    from training.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(args)
    if rc != 0:
        raise RuntimeError(f"triage {' '.join(args)} exited {rc}")
    return json.loads(buf.getvalue())  # type: ignore[no-any-return]


def baseline(train_texts: list[str], train_y: list[str], test_texts: list[str], test_y: list[str]) -> dict[str, float]:
    """TF-IDF word (1-2) + char (2-5) n-grams and logistic regression: the usual strong baseline."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    from triage.heads import make_lexical_features

    t0 = time.perf_counter()
    feats = make_lexical_features().fit(train_texts)
    clf = LogisticRegression(C=10, max_iter=3000).fit(feats.transform(train_texts), train_y)
    fit_s = time.perf_counter() - t0
    pred = clf.predict(feats.transform(test_texts))
    return {"accuracy": float(np.mean(pred == np.array(test_y))),
            "macro_f1": float(f1_score(test_y, pred, average="macro")),
            "train_seconds": round(fit_s, 1)}


def _read(path: Path, text: str, label: str) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r[text] for r in rows], [r[label] for r in rows]


def _train_eval(name: str, train: Path, test: Path, text: str, label: str, work: Path,
                extra: list[str]) -> dict[str, object]:
    out = work / f"{name}-bundle"
    t0 = time.perf_counter()
    trained = _cli(["train", "--data", str(train), "--text-column", text, "--label", f"{label}={label}",
                    "--out", str(out), *extra])
    train_s = time.perf_counter() - t0
    metrics = _cli(["evaluate", "--model", str(out), "--data", str(test), "--text-column", text,
                    "--label", f"{label}={label}", "--json"])[label]
    tr_x, tr_y = _read(train, text, label)
    te_x, te_y = _read(test, text, label)
    base = baseline(tr_x, tr_y, te_x, te_y)
    return {
        "train_rows": len(tr_x), "test_rows": len(te_x),
        "triage": {k: metrics[k] for k in ("accuracy", "macro_f1", "coverage", "accuracy_covered",  # type: ignore[index]
                                           "coverage_at_90")},
        "triage_train_seconds_incl_embedding": round(train_s, 1),
        "triage_train_seconds_by_stage": trained.get("training_seconds"),
        "baseline_tfidf_logreg": base,
        "accuracy_gain_over_baseline": round(float(metrics["accuracy"]) - base["accuracy"], 4),  # type: ignore[index]
        "train_args": extra,
    }


def bench_banking77(work: Path, extra: list[str]) -> dict[str, object]:
    d = _need(SHARED / "banking77")
    return _train_eval("banking77", d / "train.csv", d / "test.csv", "text", "category", work, extra)


def bench_bitext(work: Path, extra: list[str]) -> dict[str, object]:
    from sklearn.model_selection import train_test_split

    src = _need(SHARED / "bitext" / "bitext_customer_support.csv")
    with src.open(newline="", encoding="utf-8") as f:
        rows = [{"instruction": r["instruction"], "category": r["category"]} for r in csv.DictReader(f)]
    tr, te = train_test_split(rows, test_size=0.2, random_state=0,
                              stratify=[r["category"] for r in rows])
    paths = []
    for name, part in (("train", tr), ("test", te)):
        p = work / f"bitext-{name}.csv"
        with p.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=["instruction", "category"])
            w.writeheader()
            w.writerows(part)
        paths.append(p)
    return _train_eval("bitext", paths[0], paths[1], "instruction", "category", work, extra)


def bench_seed(work: Path, model: str | None) -> dict[str, object]:
    """The shipped default model on the project's held-out split, per language."""
    from triage.data import load_labelled

    test = REPO / "data" / "seed" / "test"
    args = ["evaluate", "--data", str(test), "--text-column", "text", "--subject-column", "subject",
            "--label", "department=department", "--label", "urgency=urgency",
            "--group-by", "language", "--json"]
    if model:
        args += ["--model", model]
    metrics = _cli(args)
    dept = metrics["department"]
    per_lang = {lang: round(m["macro_f1"], 4) for lang, m in dept["per_language"].items()}  # type: ignore[index]
    worst = min(per_lang, key=lambda k: per_lang[k])
    data = load_labelled([REPO / "data" / "seed" / "train"], "text",
                         {"department": "department", "urgency": "urgency"}, "subject")
    te = load_labelled([test], "text", {"department": "department", "urgency": "urgency"}, "subject")
    base = {h: baseline(data.texts, data.labels[h], te.texts, te.labels[h])  # type: ignore[arg-type]
            for h in ("department", "urgency")}
    return {
        "department": {k: dept[k] for k in ("accuracy", "macro_f1", "coverage",  # type: ignore[index]
                                            "accuracy_covered", "coverage_at_90")},
        "department_macro_f1_per_language": per_lang,
        "department_macro_f1_ci95_per_language": {  # bootstrap over each language's rows
            lang: m["macro_f1_ci95"] for lang, m in dept["per_language"].items()},  # type: ignore[index]
        "worst_language_gap_to_en": round(per_lang["en"] - per_lang[worst], 4),
        "worst_language": worst,
        "urgency": {k: metrics["urgency"][k] for k in ("accuracy", "macro_f1", "coverage",  # type: ignore[index]
                                                       "accuracy_covered", "coverage_at_90")},
        "baseline_tfidf_logreg": base,
    }


def bench_bitext_kb(model: str | None) -> dict[str, object]:
    """Reply suggestions on Bitext's 4.5k English instructions, intents mapped to our articles."""
    import yaml

    from training.cli import DEFAULT_MODELS
    from training.kb_eval import evaluate_bitext
    from triage.service import TriageService

    src = _need(SHARED / "bitext" / "bitext_customer_support.csv")
    intent_map = yaml.safe_load((REPO / "data" / "kb" / "bitext_intent_map.yaml").read_text())
    service = TriageService.from_bundle(model or DEFAULT_MODELS)
    return evaluate_bitext(service, src, intent_map)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["banking77", "bitext", "seed", "bitext-kb"],
                        action="append")
    parser.add_argument("--model", help="bundle for the seed benchmark (default: the served one)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--train-args", default="--loss hinge --C 0.5 --dense-weight 2",
                        help="extra `triage train` options for Banking77 and Bitext")
    args = parser.parse_args()
    which = args.only or ["banking77", "bitext", "seed", "bitext-kb"]
    extra = args.train_args.split()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "seed" in which:
            results["seed_heldout"] = bench_seed(work, args.model)
        if "bitext-kb" in which:
            results["bitext_kb_suggestions"] = bench_bitext_kb(args.model)
        if "bitext" in which:
            results["bitext_category"] = bench_bitext(work, extra)
        if "banking77" in which:
            results["banking77"] = bench_banking77(work, extra)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "quality" if len(which) == 4 else "quality-" + "-".join(which)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
