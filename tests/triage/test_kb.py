"""Knowledge base: placeholders, fallback language, refusal, run-time edits, persistence."""

import random

import numpy as np
import pytest

from triage.kb import Article, ArticleError, KnowledgeBaseIndex, fill_placeholders


def _articles():
    return [
        Article("order-status", "orders_shipping", "Where is my order?",
                replies={"en": "Hi {customer_name}, order {order_id} ships via {tracking_url}.",
                         "de": "Hallo {customer_name}, Bestellung {order_id}: {tracking_url}"},
                questions={"en": ["where is my order", "my parcel has not arrived"]}),
        Article("password-reset", "account_security", "Reset password",
                replies={"en": "Hi {customer_name}, reset here: {reset_link}"},
                questions={"en": ["i forgot my password", "cannot log in password"]}),
        Article("refund-timeline", "returns_refunds", "Refund timeline",
                replies={"en": "Hi {customer_name}, refunds take {refund_days} days.",
                         "fr": "Bonjour {customer_name}, {refund_days} jours."},
                questions={"en": ["when do i get my refund", "refund still not received"]}),
    ]


@pytest.fixture()
def index(fake_embedder):
    return KnowledgeBaseIndex(fake_embedder).build(_articles())


def test_fill_placeholders_lists_what_is_missing():
    text, missing = fill_placeholders("Hi {customer_name}, order {order_id} {order_id}",
                                      {"customer_name": "Ana", "order_id": ""})
    assert text == "Hi Ana, order {order_id} {order_id}"
    assert missing == ["order_id"]
    text, missing = fill_placeholders("{a}{b}", {"a": 1, "b": {"nested": 1}})
    assert text == "1{b}" and missing == ["b"]
    long_text, _ = fill_placeholders("{a}", {"a": "x" * 10_000})
    assert len(long_text) == 500


def test_suggest_fills_context_and_reports_missing(index, fake_embedder):
    q = fake_embedder.encode_queries(["where is my order please"])[0]
    res = index.suggest(q, language="en", context={"customer_name": "Mia", "order_id": "A1"}, top_k=1)
    assert res.confident
    item = res.suggestions[0]
    assert item.article_id == "order-status"
    assert item.text.startswith("Hi Mia, order A1")
    assert item.missing_placeholders == ["tracking_url"]
    assert "{tracking_url}" in item.text  # unfilled stays visible, and is listed


def test_reply_in_requested_language_or_marked_fallback(index, fake_embedder):
    q = fake_embedder.encode_queries(["where is my order please"])[0]
    de = index.suggest(q, language="de", top_k=1).suggestions[0]
    assert (de.language, de.fallback) == ("de", False)
    ja = index.suggest(q, language="ja", top_k=1).suggestions[0]
    assert (ja.language, ja.fallback) == ("en", True)
    assert ja.text.startswith("Hi ")


def test_no_confident_suggestion_below_threshold(index, fake_embedder):
    index.threshold = 0.99
    res = index.suggest(fake_embedder.encode_queries(["zzz qqq xxx"])[0], language="en")
    assert not res.confident and res.suggestions == []
    assert res.to_dict()["reason"] == "no confident suggestion"


def test_calibrated_threshold_separates_questions_from_noise(index):
    threshold = index.calibrate(negatives=["qwerty uiop", "zxcvb nm"], min_recall=0.9)
    assert -1.0 <= threshold <= 1.0
    assert index.threshold == threshold


def test_department_preference(index, fake_embedder):
    q = fake_embedder.encode_queries(["refund order"])[0]
    index.department_boost = 10.0
    assert index.search(q, top_k=1, department="account_security")[0][0] == "password-reset"


def test_add_update_delete_at_run_time(index, fake_embedder):
    q = fake_embedder.encode_queries(["gift wrapping for a birthday present"])[0]
    new = Article("gift-wrap", "pre_sales", "Gift wrapping", replies={"en": "Yes, we wrap gifts."},
                  questions={"en": ["gift wrapping for a birthday", "can you wrap a present"]})
    assert index.upsert(new) is True
    assert index.search(q, top_k=1)[0][0] == "gift-wrap"
    new.replies["en"] = "Updated reply"
    assert index.upsert(new) is False
    assert index.suggest(q, language="en", top_k=1).suggestions[0].text == "Updated reply"
    assert index.delete("gift-wrap") is True
    assert index.delete("gift-wrap") is False
    assert "gift-wrap" not in [a for a, _ in index.search(q, top_k=5)]


def test_save_and_load_round_trip(index, fake_embedder, tmp_path):
    index.priors = {"order-status": 0.01}
    index.save(tmp_path)
    loaded = KnowledgeBaseIndex.load(tmp_path, fake_embedder)
    q = fake_embedder.encode_queries(["refund still not received"])
    np.testing.assert_allclose(loaded.article_scores(q)[0], index.article_scores(q)[0], rtol=1e-6)
    assert loaded.priors == index.priors
    assert loaded.articles["order-status"].replies == index.articles["order-status"].replies


def test_article_validation():
    with pytest.raises(ArticleError, match="replies"):
        Article.from_dict({"id": "x", "department": "general"})
    with pytest.raises(ArticleError, match="lowercase"):
        Article.from_dict({"id": "Bad Id!", "department": "general", "replies": {"en": "hi"}})


def test_shipped_knowledge_base_is_complete(kb_articles):
    articles, negatives = kb_articles
    assert len(articles) >= 80
    required = {"en", "zh", "de", "fr", "es", "ja", "pt", "it", "ko", "ru", "ar"}
    for art in articles:
        assert required <= set(art.replies), (art.id, required - set(art.replies))
        placeholders = {frozenset(fill_placeholders(r, {})[1]) for r in art.replies.values()}
        assert len(placeholders) == 1, f"{art.id}: languages use different placeholders"
        assert len(art.questions.get("en", [])) >= 3
    departments = {a.department for a in articles}
    assert len(departments) == 8
    assert len(negatives) >= 50


@pytest.mark.real_model
def test_cross_lingual_retrieval_with_real_model(use_embedder, kb_articles):
    """A German or Korean message finds the article whose examples are English/Chinese."""
    articles, _ = kb_articles
    index = KnowledgeBaseIndex(use_embedder).build(
        [Article(a.id, a.department, a.title, {"en": a.replies["en"]},
                 {k: v for k, v in a.questions.items() if k in ("en", "zh")}) for a in articles]
    )
    queries = {
        "Ich habe mein Passwort vergessen und komme nicht mehr in mein Konto.": "password-reset",
        "Mir wurde derselbe Betrag zweimal von der Kreditkarte abgebucht.": "double-charge",
        "비밀번호를 잊어버렸어요. 재설정하고 싶어요.": "password-reset",
        "Le colis est marqué livré mais je n'ai rien reçu.": "delivered-not-received",
    }
    vecs = use_embedder.encode_queries(list(queries))
    for vec, (text, expected) in zip(vecs, queries.items()):
        top3 = [aid for aid, _ in index.search(vec, top_k=3)]
        assert expected in top3, (text, top3)


def test_without_question_language_drops_only_that_language(fake_embedder):
    arts = _articles()
    arts[0].questions["de"] = ["wo ist mein paket"]
    index = KnowledgeBaseIndex(fake_embedder).build(arts)
    copy = index.without_question_language("de")
    assert "de" not in copy.articles["order-status"].questions
    assert len(copy._vectors["order-status"]) == len(index._vectors["order-status"]) - 1
    q = fake_embedder.encode_queries(["wo ist mein paket"])
    full_scores, _ = index.article_scores(q)
    cut_scores, _ = copy.article_scores(q)
    assert cut_scores.max() < full_scores.max()
    assert index.articles["order-status"].questions["de"] == ["wo ist mein paket"]


def test_thresholds_per_language(fake_embedder):
    arts = _articles()
    for a in arts:
        a.questions["de"] = [f"frage {i} zu {a.title}" for i in range(12)]
        a.questions["en"] = a.questions["en"] + [f"question {i} about {a.title}" for i in range(10)]
    index = KnowledgeBaseIndex(fake_embedder).build(arts)
    index.calibrate(["völlig anderes thema", "something unrelated entirely"], min_recall=0.9)
    assert set(index.language_thresholds) == {"de", "en"}
    assert index.threshold_for("de") == index.language_thresholds["de"]
    assert index.threshold_for("xx") == index.threshold
    q = fake_embedder.encode_queries(["frage 1 zu Reset password"])[0]
    assert index.suggest(q, language="de").threshold == index.language_thresholds["de"]


def test_language_threshold_keeps_a_quarter_of_its_own_negatives_out(fake_embedder):
    """A language whose questions score low must not end up with a threshold that refuses nothing."""
    rnd = random.Random(0)

    def noise() -> str:  # questions unrelated to each other score low, like a loosely embedded language
        return "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(30))

    arts = _articles()
    for a in arts:
        a.questions["de"] = [noise() for _ in range(12)]
    index = KnowledgeBaseIndex(fake_embedder).build(arts)
    negatives = [noise() for _ in range(6)] + ["something unrelated"]
    languages = ["de"] * 6 + ["en"]
    index.calibrate(negatives, min_recall=0.9, negative_languages=languages)
    scores, _ = index.article_scores(fake_embedder.encode_queries(negatives[:6]), languages[:6])
    own_q25 = float(np.quantile(scores.max(axis=1), 0.25))
    assert index.threshold_for("de") >= own_q25 - 1e-6
    refused = sum(not index.suggest(v, language="de", query_language="de").confident
                  for v in fake_embedder.encode_queries(negatives[:6]))
    assert refused >= 2


class _TableEmbedder:
    """Returns the vector given for each text (the KB's language effect made explicit)."""

    spec = "table"

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.dim = len(next(iter(table.values())))

    def warm_up(self) -> None:
        pass

    def encode_queries(self, texts):
        v = np.array([self.table[t] for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    encode_documents = encode_queries


def test_language_centring_removes_the_shared_language_direction(tmp_path):
    # Two topics (axes 0 and 1); every "xx" text also carries a strong shared axis 2. Topic a
    # has English questions only, topic b English and xx ones. Raw, an xx query about topic a
    # is nearest to topic b's xx questions (the language direction dominates); with each
    # language's mean subtracted it finds topic a across languages.
    rng = np.random.default_rng(0)
    table: dict[str, np.ndarray] = {}

    def vec(topic, lang):
        v = np.zeros(6)
        v[topic] = 1.0
        v[2] = 3.0 if lang == "xx" else 0.0
        v[3:] = rng.normal(0, 0.05, 3)
        return v

    arts = []
    for topic, aid, langs in ((0, "topic-a", ("en",)), (1, "topic-b", ("en", "xx"))):
        questions = {lang: [f"{lang} {aid} {i}" for i in range(25)] for lang in langs}
        for lang, qs in questions.items():
            for q in qs:
                table[q] = vec(topic, lang)
        table[aid] = vec(topic, "en")  # the title
        arts.append(Article(aid, "d", aid, replies={"en": "r"}, questions=questions))
    table["xx query"] = vec(0, "xx")

    emb = _TableEmbedder(table)
    index = KnowledgeBaseIndex(emb).build(arts)
    assert set(index.language_means) == {"en", "xx", "_all"}
    q = emb.encode_queries(["xx query"])[0]
    assert index.search(q, top_k=1, language="xx")[0][0] == "topic-a"
    # without means (an index saved before centring) the same query lands on topic b
    raw = KnowledgeBaseIndex(emb)
    raw.articles = {a.id: a for a in arts}
    raw._vectors = {a.id: emb.encode_queries(
        [*(q for qs in a.questions.values() for q in qs), a.title]) for a in arts}
    assert raw.search(q, top_k=1, language="xx")[0][0] == "topic-b"
    # means survive save/load and copies; unknown languages fall back to the global mean
    index.save(tmp_path / "kb")
    loaded = KnowledgeBaseIndex.load(tmp_path / "kb", emb)
    assert set(loaded.language_means) == set(index.language_means)
    np.testing.assert_allclose(loaded.article_scores(q, "xx")[0], index.article_scores(q, "xx")[0],
                               rtol=1e-6)
    assert set(index.without_question_language("xx").language_means) == {"en", "xx", "_all"}
    np.testing.assert_allclose(index.center(q, "zz"), index.center(q, None))
