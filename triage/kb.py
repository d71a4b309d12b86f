"""Knowledge base: articles, a cross-lingual embedding index over them, and reply suggestions.

Every article contributes several index entries (its example questions in any language, its
replies in every language); an article's score for a query is its best entry's cosine similarity.
Languages meet in the multilingual embedding space, so a German message finds an article whose
examples are English or Chinese. Searches read a :class:`SearchIndex` snapshot: exact up to
``EXACT_SEARCH_MAX_ARTICLES`` articles, an inverted file over article centroids beyond.
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

# Up to this many articles a query is scored against every entry (exact). Measured with
# ``python -m bench.cost_growth`` (28 entries per article): exact costs 0.6 ms at 100 articles,
# 2.9 ms at 300 and 8 ms at 1,000; the inverted file ~1-2 ms from 300 to 100,000 articles.
EXACT_SEARCH_MAX_ARTICLES = 200
PROBE_LISTS = 8  # k-means lists (of ~sqrt(n) articles each) a query looks into
RERANK_ARTICLES = 64  # best articles by centroid that are scored exactly on their entries
# A language's mean vector is subtracted from its texts (entries and queries) once the KB has
# this many example questions in it; other languages get the mean over all languages.
MIN_QUESTIONS_FOR_LANGUAGE_MEAN = 20
GLOBAL_MEAN = "_all"


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


class SearchIndex:
    """An immutable snapshot of the article vectors, as searches read them.

    ``matrix`` holds every index entry, contiguous per article (``counts`` rows each, in ``ids``
    order), ``centroids`` one row per article. An article's score is the mean of its best entry
    and its centroid. Up to ``exact_max`` articles every query scores every entry. Beyond, the
    articles are grouped by k-means over their centroids (an inverted file): a query scores the
    centroids of the ``probe`` nearest groups only and re-scores the ``rerank`` best of those
    exactly on their entries, so its cost no longer grows with the number of articles.
    ``lists`` are k-means centres to reuse (a rebuild after an edit then skips training).
    """

    def __init__(
        self,
        ids: Sequence[str],
        matrix: np.ndarray,
        counts: Sequence[int] | np.ndarray,
        centroids: np.ndarray,
        departments: Sequence[str],
        *,
        exact_max: int = EXACT_SEARCH_MAX_ARTICLES,
        probe: int = PROBE_LISTS,
        rerank: int = RERANK_ARTICLES,
        lists: np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        self.ids = list(ids)
        self.matrix = matrix
        counts = np.asarray(counts, dtype=np.int64)
        if len(counts) != len(self.ids) or (len(counts) and counts.min() < 1):
            raise ValueError("every article needs at least one entry")
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts
        self.centroids = centroids
        self.departments = np.asarray(list(departments), dtype=object)
        self.positions = {aid: n for n, aid in enumerate(self.ids)}
        self.probe = probe
        self.rerank = rerank
        self.lists: np.ndarray | None = None
        if len(self.ids) > exact_max:
            n_lists = max(2, round(float(np.sqrt(len(self.ids)))))
            usable = lists is not None and lists.shape[1] == centroids.shape[1] and (
                n_lists / 2 <= len(lists) <= n_lists * 2)
            trained = lists if usable and lists is not None else spherical_kmeans(
                centroids, n_lists, seed=seed)
            assign = _nearest(centroids, trained)
            self.lists = trained
            self.members = np.argsort(assign, kind="stable")
            self.offsets = np.searchsorted(assign[self.members], np.arange(len(trained) + 1))
            self.grouped = np.ascontiguousarray(centroids[self.members])

    def __len__(self) -> int:
        return len(self.ids)

    def exact_scores(self, queries: np.ndarray) -> np.ndarray:
        """(n_queries, n_articles) scores against every entry, ~64 MB of similarities at a time."""
        q = np.atleast_2d(queries).astype(np.float32)
        out = np.empty((q.shape[0], len(self.ids)), dtype=np.float32)
        for i in range(0, q.shape[0], 4096):
            qi = q[i:i + 4096]
            per_block = max(1, (1 << 24) // len(qi))  # entries per block of articles
            a = 0
            while a < len(self.ids):
                b = max(a + 1, int(np.searchsorted(self.ends, self.starts[a] + per_block, "right")))
                first, last = self.starts[a], self.ends[b - 1]
                sims = qi @ self.matrix[first:last].T
                # entries are contiguous per article, so a segmented max gives each one's best
                best = np.maximum.reduceat(sims, self.starts[a:b] - first, axis=1)
                out[i:i + 4096, a:b] = 0.5 * (best + qi @ self.centroids[a:b].T)
                a = b
        return out

    def candidates(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(article positions, scores) for one query: every article, or the inverted file's."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if self.lists is None:
            return np.arange(len(self.ids)), self.exact_scores(q)[0]
        probe = min(self.probe, len(self.lists))
        nearest = np.argpartition(-(self.lists @ q), probe - 1)[:probe]
        slices = [(self.offsets[g], self.offsets[g + 1]) for g in nearest]
        rows = np.concatenate([np.arange(a, b) for a, b in slices])
        centroid_scores = np.concatenate([self.grouped[a:b] @ q for a, b in slices])
        keep = min(self.rerank, len(rows))
        if keep == 0:  # only empty lists probed (k-means may leave a list empty)
            return np.arange(len(self.ids)), self.exact_scores(q)[0]
        top = np.argpartition(-centroid_scores, keep - 1)[:keep]
        positions = self.members[rows[top]]
        best = np.array([float(np.max(self.matrix[self.starts[p]:self.ends[p]] @ q))
                         for p in positions], dtype=np.float32)
        return positions, 0.5 * (best + centroid_scores[top])


def spherical_kmeans(x: np.ndarray, k: int, iterations: int = 10, seed: int = 0) -> np.ndarray:
    """``k`` unit-length centres for the unit vectors ``x`` (trained on a sample of 64 per centre)."""
    from scipy.sparse import csr_matrix

    rng = np.random.default_rng(seed)
    sample = x[np.sort(rng.choice(len(x), size=min(len(x), 64 * k), replace=False))]
    centres = sample[rng.choice(len(sample), size=k, replace=False)].copy()
    for _ in range(iterations):
        assign = _nearest(sample, centres)
        onehot = csr_matrix((np.ones(len(sample), dtype=np.float32),
                             (assign, np.arange(len(sample)))), shape=(k, len(sample)))
        sums = np.asarray(onehot @ sample)
        empty = np.flatnonzero(np.bincount(assign, minlength=k) == 0)
        sums[empty] = sample[rng.choice(len(sample), size=len(empty), replace=False)]
        centres = (sums / np.linalg.norm(sums, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)
    return centres


def _nearest(x: np.ndarray, centres: np.ndarray, chunk: int = 8192) -> np.ndarray:
    return np.concatenate([np.argmax(x[i:i + chunk] @ centres.T, axis=1)
                           for i in range(0, len(x), chunk)]) if len(x) else np.zeros(0, np.int64)


# From this many negatives up, a language's refusal threshold keeps at least this share of them out.
MIN_LANGUAGE_NEGATIVES = 5
MIN_LANGUAGE_REFUSAL = 0.25


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
        # Language centring (see :meth:`center`): mean raw vector per language, GLOBAL_MEAN for all.
        self.language_means: dict[str, np.ndarray] = {}
        self.articles: dict[str, Article] = {}
        self.priors: dict[str, float] = {}
        self._vectors: dict[str, np.ndarray] = {}  # article id -> (n_entries, dim)
        self._lock = threading.RLock()
        self._search: SearchIndex | None = None  # rebuilt on the first search after an edit
        self._lists: np.ndarray | None = None  # k-means centres of the last inverted file

    # -- building and run-time edits ---------------------------------------------------------
    def _entries(self, article: Article) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(text, language) pairs to index: example questions first, then the title.

        Reply texts are indexed only when an article has no example questions: on the evaluation
        queries they added nothing to recall and cost most of the indexing time (long texts).
        The title is taken to be in the default language.
        """
        questions = [(q, lang) for lang, qs in article.questions.items() for q in qs]
        documents = [(article.title, self.default_language)]
        if not questions:
            documents += [(PLACEHOLDER_RE.sub(" ", r), lang) for lang, r in article.replies.items()]
        return questions, documents

    def _embed_articles(
        self, articles: Sequence[Article]
    ) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
        """Raw (uncentred) entry vectors and their languages, per article id."""
        self.embedder.warm_up()
        q_items: list[tuple[str, str, str]] = []
        d_items: list[tuple[str, str, str]] = []
        for a in articles:
            qs, ds = self._entries(a)
            q_items += [(a.id, text, lang) for text, lang in qs]
            d_items += [(a.id, text, lang) for text, lang in ds]
        qv = self.embedder.encode_queries([t for _, t, _ in q_items]) if q_items else None
        dv = self.embedder.encode_documents([t for _, t, _ in d_items]) if d_items else None
        out: dict[str, list[np.ndarray]] = {a.id: [] for a in articles}
        langs: dict[str, list[str]] = {a.id: [] for a in articles}
        for items, vecs in ((q_items, qv), (d_items, dv)):
            for i, (aid, _, lang) in enumerate(items):
                out[aid].append(vecs[i])  # type: ignore[index]
                langs[aid].append(lang)
        return {aid: np.vstack(v).astype(np.float32) for aid, v in out.items()}, langs

    # -- language centring --------------------------------------------------------------------
    def fit_language_means(self, vectors: Mapping[str, np.ndarray],
                           languages: Mapping[str, Sequence[str]]) -> None:
        """Mean raw vector of the example questions of each well-represented language.

        In a multilingual embedding space every language sits around its own mean (texts in the
        same language are similar just for being in that language). Subtracting it leaves what
        the text says (README, "Knowledge base": Recall@3 before refusal 0.973 -> 0.982).
        """
        by_lang: dict[str, list[np.ndarray]] = {}
        for aid, vecs in vectors.items():
            nq = sum(len(v) for v in self.articles[aid].questions.values()) if aid in self.articles else 0
            for vec, lang in zip(vecs[:nq], languages[aid][:nq], strict=True):
                by_lang.setdefault(lang, []).append(vec)
        if not by_lang:
            self.language_means = {}
            return
        means = {lang: np.mean(v, axis=0) for lang, v in by_lang.items()
                 if len(v) >= MIN_QUESTIONS_FOR_LANGUAGE_MEAN}
        means[GLOBAL_MEAN] = np.mean([v for vs in by_lang.values() for v in vs], axis=0)
        self.language_means = {k: m.astype(np.float32) for k, m in means.items()}

    def center(self, vecs: np.ndarray, languages: Sequence[str | None] | str | None = None) -> np.ndarray:
        """Subtract each vector's language mean (the global mean for other languages), renormalise.

        The identity when the index has no means (an empty KB, or an index saved without them).
        """
        vecs = np.atleast_2d(np.asarray(vecs, dtype=np.float32))
        if not self.language_means:
            return vecs
        if languages is None or isinstance(languages, str):
            languages = [languages] * len(vecs)
        fallback = self.language_means[GLOBAL_MEAN]
        means = np.vstack([self.language_means.get(lang or "", fallback) for lang in languages])
        out = vecs - means
        out /= np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)
        return out.astype(np.float32)

    def build(self, articles: Iterable[Article]) -> KnowledgeBaseIndex:
        arts = list(articles)
        raw, langs = self._embed_articles(arts)
        with self._lock:
            self.articles = {a.id: a for a in arts}
            self.fit_language_means(raw, langs)
            self._vectors = {aid: self.center(v, langs[aid]) for aid, v in raw.items()}
            self._search = None
        return self

    def upsert(self, article: Article) -> bool:
        """Add or replace an article; returns True when it was new. Searchable immediately."""
        raw, langs = self._embed_articles([article])
        with self._lock:
            created = article.id not in self.articles
            self.articles[article.id] = article
            self._vectors[article.id] = self.center(raw[article.id], langs[article.id])
            self._search = None
        return created

    def delete(self, article_id: str) -> bool:
        with self._lock:
            if article_id not in self.articles:
                return False
            del self.articles[article_id]
            del self._vectors[article_id]
            self._search = None
            return True

    def _centroid(self, article_id: str) -> np.ndarray:
        """Normalised mean of the article's example questions (all entries if it has none)."""
        nq = sum(len(v) for v in self.articles[article_id].questions.values())
        vecs = self._vectors[article_id]
        c = (vecs[:nq] if nq else vecs).mean(axis=0)
        return (c / (np.linalg.norm(c) or 1.0)).astype(np.float32)

    def search_index(self) -> SearchIndex:
        """The current snapshot, built on first use after an edit (see :meth:`warm_up`)."""
        with self._lock:
            if self._search is None:
                ids = sorted(self._vectors)
                dim = self.embedder.dim or 1
                counts = [len(self._vectors[i]) for i in ids]
                matrix = (np.vstack([self._vectors[i] for i in ids]) if ids
                          else np.zeros((0, dim), dtype=np.float32))
                centroids = (np.vstack([self._centroid(i) for i in ids]) if ids
                             else np.zeros((0, dim), dtype=np.float32))
                self._search = SearchIndex(ids, matrix, counts, centroids,
                                           [self.articles[i].department for i in ids],
                                           lists=self._lists)
                self._lists = self._search.lists
                # Keep one copy of the vectors: each article's array becomes a view of the matrix.
                for aid, start, end in zip(ids, self._search.starts, self._search.ends):
                    self._vectors[aid] = matrix[start:end]
            return self._search

    def warm_up(self) -> None:
        """Build the search snapshot now rather than on the first query."""
        self.search_index()

    # -- search -----------------------------------------------------------------------------
    def article_scores(
        self, query_vecs: np.ndarray, languages: Sequence[str | None] | str | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """(n_queries, n_articles) relevance scores, and the article ids.

        ``query_vecs`` are raw encoder vectors; ``languages`` the queries' languages (for
        :meth:`center`; None: the global mean).

        The score averages the best single entry (precise phrasings) with the centroid of the
        article's example questions (the topic as a whole); on the evaluation queries this beat
        either alone (see README, "Knowledge base").
        """
        index = self.search_index()
        if not len(index):
            return np.zeros((np.atleast_2d(query_vecs).shape[0], 0), dtype=np.float32), index.ids
        return index.exact_scores(self.center(query_vecs, languages)), index.ids

    def prior(self, article_id: str, department: str | None = None) -> float:
        """The article's global prior plus its prior for queries routed to ``department``."""
        value = self.priors.get(prior_key(article_id), 0.0)
        if department is not None:
            value += self.priors.get(prior_key(article_id, department), 0.0)
        return value

    def search(
        self, query_vec: np.ndarray, top_k: int = 3, department: str | None = None,
        language: str | None = None,
    ) -> list[tuple[str, float]]:
        """Best ``top_k`` (article id, score), with the department boost and priors added.

        ``query_vec`` is the raw encoder vector of a message in ``language`` (see :meth:`center`).

        Small knowledge bases are searched exactly; large ones through the inverted file (see
        :class:`SearchIndex`), where boost and priors re-order the candidates it returns.
        """
        index = self.search_index()
        if not len(index):
            return []
        positions, scores = index.candidates(self.center(query_vec, language)[0])
        s = scores.copy()
        if department is not None:
            s[index.departments[positions] == department] += self.department_boost
        if self.priors:
            exact = len(positions) == len(index)  # then positions are 0..n-1
            local = None if exact else {index.ids[p]: n for n, p in enumerate(positions)}
            for aid in {key.partition("|")[0] for key in list(self.priors)}:
                n = index.positions.get(aid) if exact else local.get(aid)  # type: ignore[union-attr]
                if n is not None:
                    s[n] += self.prior(aid, department)
        order = np.argsort(-s)[:top_k]
        return [(index.ids[positions[i]], float(s[i])) for i in order]

    def suggest(
        self,
        query_vec: np.ndarray,
        language: str,
        department: str | None = None,
        context: Mapping[str, object] | None = None,
        top_k: int = 3,
        query_language: str | None = None,
    ) -> SuggestionResult:
        """Replies in ``language`` for the message whose raw vector is ``query_vec``.

        ``query_language`` is the message's own language (default: ``language``); the reply
        language may differ when the caller asks for one.
        """
        hits = self.search(query_vec, top_k=top_k, department=department,
                           language=query_language or language)
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
                    lang, fallback = min(art.replies), True
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
        answers (all languages pooled; ``negative_languages`` gives their languages for
        :meth:`center`, detected when not given). The global threshold sits at the 95th
        percentile of negative scores, capped so that ``min_recall`` of positives still pass.
        Scores still differ a little by language, so every language with enough example
        questions gets the global threshold shifted by how far its positives' median lies from
        the overall median (again capped at its own ``min_recall``), but never so low that less
        than ``MIN_LANGUAGE_REFUSAL`` of that language's own negatives would be refused (when it
        has ``MIN_LANGUAGE_NEGATIVES`` of them).
        The negatives are pooled for the rest because, with a handful per language, a
        per-language 95th percentile is just their maximum.
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
            if negative_languages is None:
                from .language import LanguageDetector

                detector = LanguageDetector()
                negative_languages = [detector.detect(t).language for t in negatives]
            neg_scores, _ = self.article_scores(self.embedder.encode_queries(list(negatives)),
                                                list(negative_languages))
            neg = neg_scores.max(axis=1)

        cap = float(np.quantile(pos, 1.0 - min_recall))
        self.threshold = min(float(np.quantile(neg, 0.95)), cap) if len(neg) else cap
        median = float(np.median(pos))
        nlangs = np.array(list(negative_languages or []), dtype=object)
        self.language_thresholds = {}
        for lang in sorted(set(pos_langs)):
            if (plangs == lang).sum() < 20:
                continue
            t = min(self.threshold + float(np.median(pos[plangs == lang])) - median,
                    float(np.quantile(pos[plangs == lang], 1.0 - min_recall)))
            own_neg = neg[nlangs == lang]
            if len(own_neg) >= MIN_LANGUAGE_NEGATIVES:
                # A language the encoder embeds loosely (its own example questions score low)
                # would otherwise get a threshold that refuses nothing.
                t = max(t, float(np.quantile(own_neg, MIN_LANGUAGE_REFUSAL)))
            self.language_thresholds[lang] = t
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
            np.savez_compressed(d / INDEX_FILE, **{f"a_{n}": self._vectors[i] for n, i in enumerate(ids)},
                                **{f"mean_{lang}": m for lang, m in self.language_means.items()})
            (d / INDEX_META_FILE).write_text(json.dumps({
                "encoder": self.embedder.spec,
                "ids": ids,
                "threshold": self.threshold,
                "language_thresholds": self.language_thresholds,
                "language_means": sorted(self.language_means),  # vectors centred with these
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
            index.language_means = {lang: z[f"mean_{lang}"] for lang in meta.get("language_means", [])}
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
        # The language means stay: they describe the languages, not the removed questions' articles.
        copy.language_means = dict(self.language_means)
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
