"""The authored seed dataset: schema, coverage, split hygiene, and the bundle trained on it."""

import json
from collections import Counter

from tests.conftest import REPO, SEED_TEST, SEED_TRAIN
from triage.bundle import read_manifest, resolve_bundle
from triage.data import load_labelled

DEPARTMENTS = {"pre_sales", "orders_shipping", "returns_refunds", "billing_payments",
               "technical_support", "account_security", "complaints", "general"}
URGENCY = {"low", "normal", "high", "urgent"}
FIELDS = {"id", "language", "channel", "subject", "text", "department", "urgency"}


def _rows(directory):
    return [json.loads(line) for path in sorted(directory.glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_schema_labels_and_coverage():
    train, test = _rows(SEED_TRAIN), _rows(SEED_TEST)
    assert len(train) >= 4000 and len(test) >= 1000
    ids = [r["id"] for r in train + test]
    assert len(ids) == len(set(ids))
    for r in train + test:
        assert set(r) == FIELDS, r["id"]
        assert r["department"] in DEPARTMENTS and r["urgency"] in URGENCY, r["id"]
        assert r["channel"] in {"chat", "email", "form"} and r["text"].strip(), r["id"]
    languages = {r["language"] for r in train}
    assert len(languages) >= 10 and languages == {r["language"] for r in test}
    for lang in languages:  # every label of both heads in every language, on both splits
        for rows in (train, test):
            mine = [r for r in rows if r["language"] == lang]
            assert {r["department"] for r in mine} == DEPARTMENTS, lang
            assert {r["urgency"] for r in mine} == URGENCY, lang


def test_held_out_messages_are_not_copied_from_training():
    """Only one- and two-word greetings ("hello?", "oi") may occur in both splits."""
    train = Counter(r["text"].strip().lower() for r in _rows(SEED_TRAIN))
    shared = [r["id"] for r in _rows(SEED_TEST)
              if r["text"].strip().lower() in train and len(r["text"].split()) > 2]
    assert not shared


def test_shipped_bundle_is_trained_on_the_current_training_split():
    """Editing data/seed/train without retraining the default bundle fails here."""
    data = load_labelled([SEED_TRAIN], "text", {"department": "department", "urgency": "urgency"},
                         "subject")
    manifest = read_manifest(resolve_bundle(REPO / "models"))
    assert manifest["n_training_rows"] == len(data.texts)
    assert manifest["training_data_sha256"] == data.fingerprint()
