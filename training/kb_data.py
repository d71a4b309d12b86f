"""Reading the knowledge base as authored in ``data/kb``: articles, translations, negatives."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from triage.kb import Article, ArticleError, load_articles

NEGATIVES_FILE = "unanswerable.jsonl"


def load_kb_dir(kb_dir: str | Path) -> tuple[list[Article], list[str]]:
    """Articles from ``articles/*.yaml`` merged with ``translations/<lang>.yaml``, plus negatives.

    A translation file maps article id -> {reply, questions} for one language.
    """
    d = Path(kb_dir)
    art_dir = d / "articles" if (d / "articles").is_dir() else d
    articles = {a.id: a for a in load_articles(art_dir)}
    for tfile in sorted((d / "translations").glob("*.yaml")) if (d / "translations").is_dir() else []:
        lang = tfile.stem
        raw = yaml.safe_load(tfile.read_text(encoding="utf-8")) or {}
        for aid, entry in raw.items():
            if aid not in articles:
                raise ArticleError(f"{tfile}: unknown article id {aid!r}")
            if entry.get("reply"):
                articles[aid].replies[lang] = str(entry["reply"])
            if entry.get("questions"):
                articles[aid].questions.setdefault(lang, []).extend(str(q) for q in entry["questions"])
    negatives = []
    if (d / NEGATIVES_FILE).is_file():
        for line in (d / NEGATIVES_FILE).read_text(encoding="utf-8").splitlines():
            if line.strip():
                negatives.append(str(json.loads(line)["text"]))
    return sorted(articles.values(), key=lambda a: a.id), negatives
