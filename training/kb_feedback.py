"""Knowledge-base learning from reply decisions: ranking priors and candidate article variants.

Accepted replies raise an article's global prior; replies rejected for queries routed to a
department lower the article's prior for that department only. Edited replies are neutral for
ranking and become candidate article variants for curators (``triage kb candidates``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from triage.data import normalise_for_dedup
from triage.kb import Article, prior_key

from .feedback_io import ReplyDecision

PRIOR_CAP = 0.02  # below the department boost (0.03): feedback reorders close calls only
PRIOR_SCALE = 5.0  # decisions needed for the prior to reach ~76% of the cap


def smoothed_prior(net: float, cap: float = PRIOR_CAP, scale: float = PRIOR_SCALE) -> float:
    """Bounded, smoothed score offset for a net count of good minus bad decisions."""
    return cap * math.tanh(net / scale)


def latest_decisions(decisions: Iterable[ReplyDecision]) -> list[ReplyDecision]:
    """One decision per (request, article): an agent who changes their mind counts once."""
    out: dict[tuple[object, ...], ReplyDecision] = {}
    for n, d in enumerate(decisions):  # decisions are oldest first
        key: tuple[object, ...] = (d.request_id, d.article_id) if d.request_id else (n,)
        out.pop(key, None)
        out[key] = d
    return list(out.values())


def learn_priors(
    decisions: Iterable[ReplyDecision], known_articles: Iterable[str] | None = None
) -> dict[str, float]:
    """Priors keyed like :attr:`KnowledgeBaseIndex.priors` from the whole decision log.

    Global ``article``: ``cap * tanh(accepted / scale)`` (only raises). Per department
    ``article|dept``: ``-cap * tanh(max(0, rejected_d - accepted_d) / scale)`` (only lowers, and
    only where rejections outnumber acceptances for queries routed to that department).
    """
    known = set(known_articles) if known_articles is not None else None
    accepted: Counter[str] = Counter()
    accepted_in: Counter[tuple[str, str]] = Counter()
    rejected_in: Counter[tuple[str, str]] = Counter()
    for d in latest_decisions(decisions):
        if known is not None and d.article_id not in known:
            continue
        dept = d.query_department
        if d.decision == "accepted":
            accepted[d.article_id] += 1
            if dept:
                accepted_in[(d.article_id, dept)] += 1
        elif d.decision == "rejected" and dept:
            rejected_in[(d.article_id, dept)] += 1
    priors = {prior_key(a): round(smoothed_prior(n), 6) for a, n in accepted.items()}
    for (a, dept), n in rejected_in.items():
        net = n - accepted_in[(a, dept)]
        if net > 0:
            priors[prior_key(a, dept)] = round(-smoothed_prior(net), 6)
    return dict(sorted(priors.items()))


@dataclass
class ArticleCandidate:
    """An edited reply that curators may turn into a new variant of an article."""

    article_id: str
    final_text: str
    count: int
    departments: list[str] = field(default_factory=list)
    example_queries: list[str] = field(default_factory=list)
    first_seen: str | None = None
    last_seen: str | None = None
    article_title: str | None = None

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def edit_candidates(
    decisions: Iterable[ReplyDecision],
    articles: Mapping[str, Article] | None = None,
    max_examples: int = 3,
) -> list[ArticleCandidate]:
    """Edited replies grouped by article and normalised final text, most frequent first.

    Edits whose final text equals one of the article's replies are dropped (nothing new).
    """
    groups: dict[tuple[str, str], ArticleCandidate] = {}
    for d in latest_decisions(decisions):
        if d.decision != "edited" or not d.final_text:
            continue
        key = (d.article_id, normalise_for_dedup(d.final_text))
        art = articles.get(d.article_id) if articles else None
        if art is not None and key[1] in {normalise_for_dedup(r) for r in art.replies.values()}:
            continue
        when = d.created_at.isoformat(timespec="seconds") if d.created_at else None
        cand = groups.get(key)
        if cand is None:
            cand = groups[key] = ArticleCandidate(
                d.article_id, d.final_text, 0, first_seen=when,
                article_title=art.title if art is not None else None,
            )
        cand.count += 1
        cand.final_text = d.final_text  # the newest wording of the same edit
        cand.last_seen = when or cand.last_seen
        dept = d.query_department
        if dept and dept not in cand.departments:
            cand.departments.append(dept)
        if d.text and len(cand.example_queries) < max_examples and d.text not in cand.example_queries:
            cand.example_queries.append(d.text)
    return sorted(groups.values(), key=lambda c: (-c.count, c.article_id, c.final_text))
