"""Knowledge base: articles, a cross-lingual embedding index over them, and reply suggestions.

Every article contributes several index entries (its example questions in any language, its
replies in every language); an article's score for a query is its best entry's cosine similarity.
Languages meet in the multilingual embedding space, so a German message finds an article whose
examples are English or Chinese.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from .embedders import TextEmbedder

PLACEHOLDER_RE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
ARTICLES_FILE = "articles.json"
INDEX_FILE = "index.npz"
INDEX_META_FILE = "index.json"
MAX_CONTEXT_VALUE_CHARS = 500


def prior_key(article_id: str, department: str | None = None) -> str:
    """Key of :attr:`KnowledgeBaseIndex.priors`: the article alone, or article and department."""
    return article_id if department is None else f"{article_id}|{department}"


class ArticleError(ValueError):
    """An article is malformed (missing fields, unknown placeholders, ...)."""


@dataclass
class Article:
    id: str
    department: str
    title: str
    replies: dict[str, str]
    questions: dict[str, list[str]] = field(default_factory=dict)

    @property
    def placeholders(self) -> list[str]:
        return sorted({p for r in self.replies.values() for p in PLACEHOLDER_RE.findall(r)})

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Article:
        try:
            art = cls(
                id=str(d["id"]),
                department=str(d["department"]),
                title=str(d.get("title") or d["id"]),
                replies={str(k): str(v) for k, v in dict(d["replies"]).items()},  # type: ignore[call-overload]
                questions={str(k): [str(q) for q in v]
                           for k, v in dict(d.get("questions") or {}).items()},  # type: ignore[call-overload]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArticleError(f"article {d.get('id', '?')!r}: missing or invalid field {exc}") from exc
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,99}", art.id):
            raise ArticleError(f"article id {art.id!r}: use 1-100 lowercase letters, digits, - or _")
        if not art.replies:
            raise ArticleError(f"article {art.id!r}: needs at least one reply")
        return art

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "placeholders": self.placeholders}


def load_articles(directory: str | Path, translations: str | Path | None = None) -> list[Article]:
    """Read ``<dir>/*.yaml`` articles (sorted by id)."""
    d = Path(directory)
    files = sorted(d.glob("*.yaml"))
    if not files:
        raise ArticleError(f"{d}: no *.yaml articles")
    arts = []
    for f in files:
        raw = yaml.safe_load(f.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ArticleError(f"{f}: expected a YAML mapping")
        arts.append(Article.from_dict(raw))
    return arts


def fill_placeholders(template: str, context: Mapping[str, object]) -> tuple[str, list[str]]:
    """Fill ``{name}`` placeholders from ``context``; return the text and the names left unfilled.

    Unfilled placeholders stay visible in the text *and* are listed, never dropped silently.
    """
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        value = context.get(m.group(1))
        if value is None or value == "" or isinstance(value, (dict, list)):
            if m.group(1) not in missing:
                missing.append(m.group(1))
            return m.group(0)
        return str(value)[:MAX_CONTEXT_VALUE_CHARS]

    return PLACEHOLDER_RE.sub(sub, template), missing


@dataclass
class Suggestion:
    article_id: str
    title: str
    department: str
    score: float
    language: str
    fallback: bool
    text: str
    missing_placeholders: list[str]

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["score"] = round(self.score, 4)
        return d


@dataclass
class SuggestionResult:
    suggestions: list[Suggestion]
    confident: bool
    best_score: float
    threshold: float

    def to_dict(self) -> dict[str, object]:
        return {
            "confident": self.confident,
            "best_score": round(self.best_score, 4),
            "threshold": round(self.threshold, 4),
            "reason": None if self.confident else "no confident suggestion",
            "items": [s.to_dict() for s in self.suggestions],
        }


class KnowledgeBaseIndex:
    """Embedding index over articles with run-time add/update/delete and calibrated refusal.

    Parameters:
        embedder: encodes queries and entries; must be the classifier's embedder so one
            embedding of a message serves both routing and retrieval.
        default_language: reply language when the customer's is missing from an article.
        department_boost: added to the score of articles of the predicted department.
        threshold: best scores below it give "no confident suggestion" (see :meth:`calibrate`).

    ``priors`` are small score offsets learned from agents' reply decisions: key ``"<article id>"``
    applies to every query, ``"<article id>|<department>"`` only when that department is the
    predicted one (see :func:`prior_key`).
    """

    def __init__(
        self,
        embedder: TextEmbedder,
        default_language: str = "en",
        department_boost: float = 0.03,
        threshold: float = 0.0,
    ) -> None:
        self.embedder = embedder
        self.default_language = default_language
        self.department_boost = department_boost
        self.threshold = threshold
        self.language_thresholds: dict[str, float] = {}
        self.articles: dict[str, Article] = {}
        self.priors: dict[str, float] = {}
        self._vectors: dict[str, np.ndarray] = {}  # article id -> (n_entries, dim)
        self._lock = threading.RLock()
        self._matrix: np.ndarray | None = None
        self._owner: np.ndarray | None = None
        self._centroids: np.ndarray | None = None
        self._ids: list[str] = []

    # -- building and run-time edits ---------------------------------------------------------
    @staticmethod
    def _entries(article: Article) -> tuple[list[str], list[str]]:
        """Texts to index: example questions first, then the title.

        Reply texts are indexed only when an article has no example questions: on the evaluation
        queries they added nothing to recall and cost most of the indexing time (long texts).
        """
        questions = [q for qs in article.questions.values() for q in qs]
        documents = [article.title]
        if not questions:
            documents += [PLACEHOLDER_RE.sub(" ", r) for r in article.replies.values()]
        return questions, documents

    def _embed_articles(self, articles: Sequence[Article]) -> dict[str, np.ndarray]:
        self.embedder.warm_up()
        q_texts, d_texts, q_owner, d_owner = [], [], [], []
        for a in articles:
            qs, ds = self._entries(a)
            q_texts += qs
            q_owner += [a.id] * len(qs)
            d_texts += ds
            d_owner += [a.id] * len(ds)
        qv = self.embedder.encode_queries(q_texts) if q_texts else None
        dv = self.embedder.encode_documents(d_texts) if d_texts else None
        out: dict[str, list[np.ndarray]] = {a.id: [] for a in articles}
        for owner, vecs in ((q_owner, qv), (d_owner, dv)):
            for i, aid in enumerate(owner):
                out[aid].append(vecs[i])  # type: ignore[index]
        return {aid: np.vstack(v).astype(np.float32) for aid, v in out.items()}

    def build(self, articles: Iterable[Article]) -> KnowledgeBaseIndex:
        arts = list(articles)
        vectors = self._embed_articles(arts)
        with self._lock:
            self.articles = {a.id: a for a in arts}
            self._vectors = vectors
            self._matrix = None
        return self

    def upsert(self, article: Article) -> bool:
        """Add or replace an article; returns True when it was new. Searchable immediately."""
        vectors = self._embed_articles([article])
        with self._lock:
            created = article.id not in self.articles
            self.articles[article.id] = article
            self._vectors[article.id] = vectors[article.id]
            self._matrix = None
        return created

    def delete(self, article_id: str) -> bool:
        with self._lock:
            if article_id not in self.articles:
                return False
            del self.articles[article_id]
            del self._vectors[article_id]
            self._matrix = None
            return True

    def _centroid(self, article_id: str) -> np.ndarray:
        """Normalised mean of the article's example questions (all entries if it has none)."""
        nq = sum(len(v) for v in self.articles[article_id].questions.values())
        vecs = self._vectors[article_id]
        c = (vecs[:nq] if nq else vecs).mean(axis=0)
        return (c / (np.linalg.norm(c) or 1.0)).astype(np.float32)

    def _snapshot(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        with self._lock:
            if self._matrix is None:
                ids = sorted(self._vectors)
                dim = self.embedder.dim or 1
                if ids:
                    self._matrix = np.vstack([self._vectors[i] for i in ids])
                    self._owner = np.concatenate(
                        [np.full(len(self._vectors[i]), n, dtype=np.int32) for n, i in enumerate(ids)]
                    )
                    self._centroids = np.vstack([self._centroid(i) for i in ids])
                else:
                    self._matrix = np.zeros((0, dim), dtype=np.float32)
                    self._owner = np.zeros(0, dtype=np.int32)
                    self._centroids = np.zeros((0, dim), dtype=np.float32)
                self._ids = ids
            return self._matrix, self._owner, self._ids  # type: ignore[return-value]

    # -- search -----------------------------------------------------------------------------
    def article_scores(self, query_vecs: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """(n_queries, n_articles) relevance scores, and the article ids.

        The score averages the best single entry (precise phrasings) with the centroid of the
        article's example questions (the topic as a whole); on the evaluation queries this beat
        either alone (see README, "Knowledge base").
        """
        with self._lock:
            matrix, owner, ids = self._snapshot()
            centroids = self._centroids
        q = np.atleast_2d(query_vecs).astype(np.float32)
        if not ids:
            return np.zeros((q.shape[0], 0), dtype=np.float32), ids
        sims = q @ matrix.T
        # entries are contiguous per article, so a segmented max gives each article's best entry
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        best = np.maximum.reduceat(sims, starts, axis=1)
        return 0.5 * (best + q @ centroids.T), ids

    def prior(self, article_id: str, department: str | None = None) -> float:
        """The article's global prior plus its prior for queries routed to ``department``."""
        value = self.priors.get(prior_key(article_id), 0.0)
        if department is not None:
            value += self.priors.get(prior_key(article_id, department), 0.0)
        return value

    def search(
        self, query_vec: np.ndarray, top_k: int = 3, department: str | None = None
    ) -> list[tuple[str, float]]:
        scores, ids = self.article_scores(query_vec)
        if not ids:
            return []
        s = scores[0].copy()
        for n, aid in enumerate(ids):
            art = self.articles.get(aid)
            if art is None:
                continue
            if department is not None and art.department == department:
                s[n] += self.department_boost
            s[n] += self.prior(aid, department)
        order = np.argsort(-s)[:top_k]
        return [(ids[i], float(s[i])) for i in order]

    def suggest(
        self,
        query_vec: np.ndarray,
        language: str,
        department: str | None = None,
        context: Mapping[str, object] | None = None,
        top_k: int = 3,
    ) -> SuggestionResult:
        hits = self.search(query_vec, top_k=top_k, department=department)
        best = hits[0][1] if hits else 0.0
        threshold = self.threshold_for(language)
        confident = bool(hits) and best >= threshold
        items = []
        if confident:
            for aid, score in hits:
                art = self.articles.get(aid)
                if art is None:  # deleted while this query ran
                    continue
                if language in art.replies:
                    lang, fallback = language, False
                elif self.default_language in art.replies:
                    lang, fallback = self.default_language, True
                else:
                    lang, fallback = sorted(art.replies)[0], True
                text, missing = fill_placeholders(art.replies[lang], context or {})
                items.append(Suggestion(aid, art.title, art.department, score, lang, fallback,
                                        text, missing))
        return SuggestionResult(items, confident, best, threshold)

    # -- calibration ------------------------------------------------------------------------
    def calibrate(self, negatives: Sequence[str] = (), min_recall: float = 0.97,
                  negative_languages: Sequence[str] | None = None) -> float:
        """Set the refusal thresholds from the KB itself, globally and per language.

        Positives: every example question scored leave-one-out (itself left out of its
        article's entries and centroid) against its own article. Negatives: messages no article
        answers. A threshold sits at the 95th percentile of negative scores, capped so that
        ``min_recall`` of positives still pass. Scores differ by language in a multilingual
        space (Korean runs lower than English here), so every language with enough example
        questions gets its own threshold; ``negative_languages`` gives the negatives' languages.
        """
        with self._lock:
            ids = list(self.articles)
            vectors = {i: self._vectors[i] for i in ids}
        pos_scores: list[float] = []
        pos_langs: list[str] = []
        for aid in ids:
            art = self.articles[aid]
            nq = sum(len(v) for v in art.questions.values())
            vecs = vectors[aid]
            if nq < 2:
                continue
            q = vecs[:nq]
            sims = q @ vecs.T
            sims[np.arange(nq), np.arange(nq)] = -1.0  # leave the question itself out
            loo_centroid = q.sum(axis=0)[None, :] - q
            loo_centroid /= np.linalg.norm(loo_centroid, axis=1, keepdims=True)
            pos_scores.extend(0.5 * (sims.max(axis=1) + (q * loo_centroid).sum(axis=1)))
            pos_langs.extend(lang for lang, qs in art.questions.items() for _ in qs)
        if not pos_scores:
            return self.threshold
        pos, plangs = np.array(pos_scores), np.array(pos_langs)
        neg = np.zeros(0)
        if len(negatives):
            neg_scores, _ = self.article_scores(self.embedder.encode_queries(list(negatives)))
            neg = neg_scores.max(axis=1)
        if negative_languages is None:
            from .language import LanguageDetector

            detector = LanguageDetector()
            negative_languages = [detector.detect(t).language for t in negatives]
        nlangs = np.array(list(negative_languages), dtype=object)

        def threshold(p: np.ndarray, n: np.ndarray) -> float:
            cap = float(np.quantile(p, 1.0 - min_recall))
            return min(float(np.quantile(n, 0.95)), cap) if len(n) else cap

        self.threshold = threshold(pos, neg)
        self.language_thresholds = {
            lang: threshold(pos[plangs == lang],
                            neg[nlangs == lang] if (nlangs == lang).sum() >= 5 else neg)
            for lang in sorted(set(pos_langs)) if (plangs == lang).sum() >= 20
        }
        return self.threshold

    def threshold_for(self, language: str | None) -> float:
        return self.language_thresholds.get(language or "", self.threshold)

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        with self._lock:
            ids = sorted(self.articles)
            (d / ARTICLES_FILE).write_text(
                json.dumps([self.articles[i].to_dict() for i in ids], ensure_ascii=False, indent=1)
            )
            np.savez_compressed(d / INDEX_FILE, **{f"a_{n}": self._vectors[i] for n, i in enumerate(ids)})
            (d / INDEX_META_FILE).write_text(json.dumps({
                "encoder": self.embedder.spec,
                "ids": ids,
                "threshold": self.threshold,
                "language_thresholds": self.language_thresholds,
                "default_language": self.default_language,
                "department_boost": self.department_boost,
                "priors": self.priors,
            }, indent=1))

    @classmethod
    def load(cls, directory: str | Path, embedder: TextEmbedder) -> KnowledgeBaseIndex:
        d = Path(directory)
        meta = json.loads((d / INDEX_META_FILE).read_text())
        if meta["encoder"] != embedder.spec:
            raise ValueError(
                f"{d}: index built with encoder {meta['encoder']!r}, not {embedder.spec!r}; "
                "rebuild it with `triage index`"
            )
        index = cls(embedder, meta["default_language"], meta["department_boost"], meta["threshold"])
        arts = [Article.from_dict(a) for a in json.loads((d / ARTICLES_FILE).read_text())]
        with np.load(d / INDEX_FILE) as z:
            index._vectors = {aid: z[f"a_{n}"] for n, aid in enumerate(meta["ids"])}
        index.articles = {a.id: a for a in arts}
        index.priors = {k: float(v) for k, v in meta.get("priors", {}).items()}
        index.language_thresholds = {k: float(v) for k, v in meta.get("language_thresholds", {}).items()}
        return index

    def without_question_language(self, language: str) -> KnowledgeBaseIndex:
        """A copy whose articles lack example questions in ``language`` (no re-embedding).

        Used to measure cross-lingual retrieval: queries in ``language`` must then find their
        article through questions and titles written in other languages.
        """
        copy = KnowledgeBaseIndex(self.embedder, self.default_language, self.department_boost,
                                  self.threshold)
        copy.priors = dict(self.priors)
        copy.language_thresholds = dict(self.language_thresholds)
        with self._lock:
            for aid, art in self.articles.items():
                keep, offset = [], 0
                for lang, qs in art.questions.items():
                    if lang != language:
                        keep.extend(range(offset, offset + len(qs)))
                    offset += len(qs)
                keep.extend(range(offset, len(self._vectors[aid])))  # title / documents
                copy.articles[aid] = Article(art.id, art.department, art.title, dict(art.replies),
                                             {k: v for k, v in art.questions.items() if k != language})
                copy._vectors[aid] = self._vectors[aid][keep]
        return copy

    @property
    def languages(self) -> list[str]:
        with self._lock:
            articles = list(self.articles.values())
        return sorted({lang for a in articles for lang in a.replies})
