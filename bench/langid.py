"""Language detection on short messages: pick the lexicon weight on a dev set, score the test set.

    python -m bench.langid            # table; writes bench/results/langid.json
    python -m bench.langid --json

Both sets are authored for the project and hold messages of 1-5 words, 60 per language:
``data/langid/dev/`` chooses the weight of the word lexicon against langdetect's probabilities
(``LanguageDetector(lexicon_weight=...)``); ``data/langid/*.jsonl`` is the held-out test set,
scored at every weight for reference but never used to choose. Ties on dev go to the smaller
weight. ``langdetect only`` is weight 0 (the script guard still applies).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
TEST_DIR = REPO / "data" / "langid"
DEV_DIR = TEST_DIR / "dev"
WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)


def read_set(directory: Path) -> list[tuple[str, str]]:
    """(text, language) pairs of the directory's files (not its subdirectories)."""
    from triage.data import load_labelled

    data = load_labelled([directory], "text", {"language": "language"})
    return list(zip(data.texts, data.labels["language"], strict=True))  # type: ignore[arg-type]


def score(rows: list[tuple[str, str]], weight: float) -> dict[str, object]:
    from triage.language import LanguageDetector

    detector = LanguageDetector(lexicon_weight=weight)
    total, correct = Counter(), Counter()
    for text, lang in rows:
        total[lang] += 1
        correct[lang] += detector.detect(text).language == lang
    per_lang = {lang: round(correct[lang] / total[lang], 4) for lang in sorted(total)}
    return {"accuracy": round(sum(correct.values()) / sum(total.values()), 4),
            "worst": round(min(per_lang.values()), 4), "per_language": per_lang}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    dev, test = read_set(DEV_DIR), read_set(TEST_DIR)
    by_weight = {w: {"dev": score(dev, w), "test": score(test, w)} for w in WEIGHTS}
    # best dev accuracy, then best worst-language accuracy; ties go to the smaller weight
    chosen = max(WEIGHTS, key=lambda w: (by_weight[w]["dev"]["accuracy"],
                                         by_weight[w]["dev"]["worst"], -w))
    result = {"n_dev": len(dev), "n_test": len(test), "chosen_weight": chosen,
              "test_at_chosen": by_weight[chosen]["test"],
              "by_weight": {str(w): r for w, r in by_weight.items()}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "langid.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{'weight':>7} {'dev acc':>8} {'dev worst':>10} {'test acc':>9} {'test worst':>11}")
    for w in WEIGHTS:
        d, t = by_weight[w]["dev"], by_weight[w]["test"]
        mark = "  <- chosen on dev" if w == chosen else ""
        print(f"{w:>7} {d['accuracy']:>8.3f} {d['worst']:>10.3f} {t['accuracy']:>9.3f} "
              f"{t['worst']:>11.3f}{mark}")
    print("test per language at the chosen weight:", by_weight[chosen]["test"]["per_language"])


if __name__ == "__main__":
    main()
