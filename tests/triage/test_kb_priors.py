"""KB priors per article and per (article, department): applied in search, learned from decisions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from training.feedback_io import ReplyDecision
from training.kb_feedback import PRIOR_CAP, edit_candidates, learn_priors, smoothed_prior
from triage.kb import Article, KnowledgeBaseIndex, prior_key

A = Article("a-parcel", "orders_shipping", "Parcel", {"en": "Your parcel is coming."},
            {"en": ["where is my parcel"]})
B = Article("b-parcel", "orders_shipping", "Parcel late", {"en": "Sorry, your parcel is late."},
            {"en": ["where is my parcel please"]})


@pytest.fixture
def index(fake_embedder) -> KnowledgeBaseIndex:
    return KnowledgeBaseIndex(fake_embedder).build([A, B])


def _order(index: KnowledgeBaseIndex, department: str | None = None) -> list[str]:
    q = index.embedder.encode_queries(["where is my parcel"])[0]
    return [aid for aid, _ in index.search(q, top_k=2, department=department)]


def test_global_and_department_priors_apply_in_search(index):
    assert _order(index) == ["a-parcel", "b-parcel"]
    q = index.embedder.encode_queries(["where is my parcel"])[0]
    base = dict(index.search(q, top_k=2))
    gap = base["a-parcel"] - base["b-parcel"]
    index.priors = {prior_key("b-parcel"): gap + 0.01}
    assert _order(index) == ["b-parcel", "a-parcel"]
    # a department prior only counts when that department is the predicted one
    index.priors[prior_key("b-parcel", "complaints")] = -(2 * gap + 0.05)
    assert _order(index, department="complaints") == ["a-parcel", "b-parcel"]
    assert _order(index, department="orders_shipping") == ["b-parcel", "a-parcel"]
    assert index.prior("b-parcel", "complaints") == pytest.approx(-gap - 0.04)


def test_priors_survive_save_and_load(index, tmp_path, fake_embedder):
    index.priors = {"a-parcel": 0.01, "a-parcel|complaints": -0.02}
    index.save(tmp_path)
    loaded = KnowledgeBaseIndex.load(tmp_path, fake_embedder)
    assert loaded.priors == index.priors
    q = fake_embedder.encode_queries(["where is my parcel"])[0]
    assert np.allclose([s for _, s in loaded.search(q, department="complaints")],
                       [s for _, s in index.search(q, department="complaints")])


def _d(article, decision, dept="orders_shipping", req=None, final=None, minute=0):
    return ReplyDecision(article, decision, "where is my parcel", final, dept, None,
                         dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=minute), req)


def test_learned_priors_are_bounded_and_smoothed():
    assert smoothed_prior(0) == 0.0
    assert 0 < smoothed_prior(1) < smoothed_prior(5) < smoothed_prior(1000) <= PRIOR_CAP
    priors = learn_priors([_d("a-parcel", "accepted") for _ in range(1000)])
    assert priors == {"a-parcel": pytest.approx(PRIOR_CAP, abs=1e-6)}


def test_rejections_lower_an_article_only_for_that_department():
    decisions = ([_d("a-parcel", "accepted", "orders_shipping")] * 3
                 + [_d("a-parcel", "rejected", "complaints")] * 4
                 + [_d("a-parcel", "rejected", "orders_shipping")] * 2  # outweighed by 3 accepts
                 + [_d("b-parcel", "edited", final="x")] * 5)  # edits are neutral for ranking
    priors = learn_priors(decisions, known_articles=["a-parcel", "b-parcel"])
    assert priors == {"a-parcel": pytest.approx(smoothed_prior(3), abs=1e-6),
                      "a-parcel|complaints": pytest.approx(-smoothed_prior(4), abs=1e-6)}
    assert learn_priors(decisions, known_articles=["b-parcel"]) == {}


def test_an_agent_changing_their_mind_counts_once():
    decisions = [_d("a-parcel", "rejected", "complaints", req="r1", minute=0),
                 _d("a-parcel", "accepted", "complaints", req="r1", minute=1)]
    assert learn_priors(decisions) == {"a-parcel": pytest.approx(smoothed_prior(1), abs=1e-6)}


def test_edit_candidates_group_by_article_and_text():
    decisions = [_d("a-parcel", "edited", final="Your parcel ships  tomorrow.", minute=1),
                 _d("a-parcel", "edited", final="your parcel ships tomorrow.", dept="complaints",
                    minute=2),
                 _d("a-parcel", "edited", final="Your parcel is coming.", minute=3),  # = a reply
                 _d("b-parcel", "edited", final="Late parcels get a voucher.", minute=4),
                 _d("b-parcel", "accepted", minute=5)]
    cands = edit_candidates(decisions, {"a-parcel": A, "b-parcel": B})
    assert [(c.article_id, c.count) for c in cands] == [("a-parcel", 2), ("b-parcel", 1)]
    assert cands[0].departments == ["orders_shipping", "complaints"]
    assert cands[0].final_text == "your parcel ships tomorrow."  # newest wording
    assert cands[0].article_title == "Parcel"
    assert cands[0].example_queries == ["where is my parcel"]
