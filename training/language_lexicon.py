"""Build the word-frequency lexicon that helps language detection on short Latin-script messages.

It counts words per language in the project's own authored data (the seed *training* split and
the knowledge base), never in the evaluation sets. Run it after the data changes:

    python -m training.language_lexicon
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from training.kb_data import load_kb_dir
from triage.data import load_labelled
from triage.language import _WORD_RE, LEXICON_FILE, script_counts

REPO = Path(__file__).resolve().parent.parent


def build_lexicon(seed_dirs: list[Path], kb_dir: Path | None, top_n: int = 4000) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}

    def add(lang: str, text: str) -> None:
        sc = script_counts(text)
        if not sc or max(sc, key=lambda k: sc[k]) != "latin":
            return
        counts.setdefault(lang, Counter()).update(
            w for w in _WORD_RE.findall(text.lower()) if not w.isdigit()
        )

    data = load_labelled(seed_dirs, "text", {"language": "language"}, "subject")
    for text, lang in zip(data.texts, data.labels["language"]):
        if lang:
            add(lang, text)
    if kb_dir is not None:
        articles, _ = load_kb_dir(kb_dir)
        for art in articles:
            for lang, reply in art.replies.items():
                add(lang, reply)
            for lang, qs in art.questions.items():
                for q in qs:
                    add(lang, q)
    return {lang: dict(c.most_common(top_n)) for lang, c in sorted(counts.items()) if sum(c.values()) > 500}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", default=str(REPO / "data" / "seed" / "train"))
    parser.add_argument("--kb", default=str(REPO / "data" / "kb"))
    parser.add_argument("--out", default=str(LEXICON_FILE))
    args = parser.parse_args()
    lex = build_lexicon([Path(args.seed)], Path(args.kb))
    Path(args.out).write_text(json.dumps(lex, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(json.dumps({lang: len(words) for lang, words in lex.items()}))


if __name__ == "__main__":
    main()
