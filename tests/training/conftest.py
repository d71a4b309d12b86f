"""Retraining fixtures: synthetic tickets, a served model that confuses one class, tiny registries.

The base model is trained with every ``complaints`` ticket labelled ``general`` (the class is
merged away), so it confuses complaints with general enquiries until agents correct it.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from pathlib import Path

import pytest

from triage.data import LabelledData
from triage.kb import Article
from triage.model import TrainingConfig

ENCODER = "fake:64"
HEADS = ("department", "urgency")
CONFUSED = "complaints"
MERGED_INTO = "general"
BASE_VERSION = "v0001"

VOCAB: dict[str, list[str]] = {
    "orders_shipping": ["parcel", "tracking", "courier", "delivery", "shipped", "dispatch",
                        "package", "arrive", "address", "postman", "warehouse", "transit"],
    "returns_refunds": ["return", "refund", "label", "exchange", "send back", "money back",
                        "wrong size", "damaged item", "return window", "replacement", "credit note",
                        "restocking"],
    "billing_payments": ["invoice", "charged twice", "card", "payment", "vat", "receipt",
                         "declined", "instalment", "coupon", "bank", "paypal", "billing"],
    "complaints": ["manager", "unacceptable", "third time", "formal complaint", "rude agent",
                   "disgusted", "escalate", "bad review", "nobody answers", "terrible service",
                   "supervisor", "fed up"],
    "general": ["opening hours", "newsletter", "partnership", "job", "press", "thank you",
                "store", "feedback", "suggestion", "affiliate", "hello", "compliment"],
}
FILLER = ["please", "hi", "order", "today", "help", "thanks", "regarding", "my", "the", "could",
          "you", "we", "need", "question", "about", "still", "again", "soon", "week"]
URGENT = ["asap", "immediately", "right now", "urgent"]


def make_tickets(n_per_class: int, seed: int, classes: list[str] | None = None) -> LabelledData:
    """Synthetic tickets with correct labels: words of the class plus filler; urgency by marker."""
    rng = random.Random(seed)
    data = LabelledData([], {h: [] for h in HEADS})
    for dept in classes or list(VOCAB):
        for _ in range(n_per_class):
            words = rng.sample(VOCAB[dept], 4) + rng.sample(FILLER, 4)
            urgent = rng.random() < 0.3
            if urgent:
                words.append(rng.choice(URGENT))
            rng.shuffle(words)
            data.texts.append(f"{' '.join(words)} ref {rng.randrange(10**5, 10**6)}")
            data.labels["department"].append(dept)
            data.labels["urgency"].append("high" if urgent else "normal")
    return data


def confused(data: LabelledData) -> LabelledData:
    """The same tickets with the confused class merged into another one."""
    dept = [MERGED_INTO if d == CONFUSED else d for d in data.labels["department"]]
    return LabelledData(list(data.texts), {**data.labels, "department": dept})


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def data_rows(data: LabelledData) -> list[dict[str, object]]:
    return [{"text": t, **{h: data.labels[h][i] for h in data.labels}}
            for i, t in enumerate(data.texts)]


def feedback_rows(data: LabelledData, start: dt.datetime, step_s: float = 60.0,
                  **extra: object) -> list[dict[str, object]]:
    """Export-format rows (as `triage export-feedback` writes), one minute apart."""
    return [{"text": t, "department": data.labels["department"][i],
             "urgency": data.labels["urgency"][i], "ticket_id": f"T{i}", "request_id": f"r{i}",
             "created_at": (start + dt.timedelta(seconds=i * step_s)).isoformat(), **extra}
            for i, t in enumerate(data.texts)]


ARTICLES = [
    Article("where-is-my-parcel", "orders_shipping", "Where is my parcel",
            {"en": "Your parcel is on its way: {tracking_url}"},
            {"en": ["where is my parcel", "tracking not updating"]}),
    Article("parcel-delay-apology", "orders_shipping", "Delayed parcel",
            {"en": "We are sorry your parcel is delayed."},
            {"en": ["my parcel is late", "where is my parcel, it is late"]}),
    Article("refund-status", "returns_refunds", "Refund status",
            {"en": "Refunds take 5 to 10 days."}, {"en": ["where is my refund"]}),
]


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread():
    """Tiny fits spend their time in BLAS thread hand-offs on a busy machine; one thread is
    several times faster here and changes no result."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def tickets() -> dict[str, LabelledData]:
    """Disjoint synthetic sets: base training, frozen evaluation, and the complaints to correct."""
    return {
        "base": make_tickets(40, seed=1),
        "frozen": make_tickets(30, seed=2),
        "corrections": make_tickets(240, seed=3, classes=[CONFUSED]),
        "other": make_tickets(12, seed=4),
    }


@pytest.fixture(scope="session")
def base_registry(tmp_path_factory: pytest.TempPathFactory, tickets) -> Path:
    """A registry serving ``v0001``: trained with complaints merged into general, with a KB."""
    from training.registry import Registry
    from training.trainer import train_bundle
    from triage.embedders import make_embedder
    from triage.kb import KnowledgeBaseIndex

    root = tmp_path_factory.mktemp("registry") / "models"
    embedder = make_embedder(ENCODER)
    embedder.warm_up()
    index = KnowledgeBaseIndex(embedder).build(ARTICLES)
    train_bundle(confused(tickets["base"]), root / BASE_VERSION,
                 config=TrainingConfig(encoder=ENCODER), embedder=embedder, kb_index=index,
                 version=BASE_VERSION)
    Registry(root).promote(BASE_VERSION, reason="initial")
    return root


@pytest.fixture
def registry(base_registry: Path, tmp_path: Path):
    """A private copy of the base registry for one test."""
    from training.registry import Registry

    root = tmp_path / "models"
    shutil.copytree(base_registry, root)
    return Registry(root)


@pytest.fixture
def frozen_file(tmp_path: Path, tickets) -> Path:
    return write_jsonl(tmp_path / "frozen.jsonl", data_rows(tickets["frozen"]))
