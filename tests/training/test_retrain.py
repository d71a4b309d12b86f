"""Retraining: data assembly and dedup, the evaluation gate end to end, reports, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest
from conftest import (
    BASE_VERSION,
    CONFUSED,
    ENCODER,
    HEADS,
    data_rows,
    feedback_rows,
    write_jsonl,
)

from training.cli import main
from training.feedback_io import parse_rows, read_feedback
from training.retrain import (
    RetrainConfig,
    assemble_data,
    merge_sources,
    retrain,
    split_corrections,
)
from triage.bundle import CURRENT_FILE, load_training_data, read_manifest, resolve_bundle
from triage.data import LabelledData, normalise_for_dedup
from triage.embedders import EmbeddingCache, HashingEmbedder

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


def _data(rows: list[tuple[str, str | None, str | None]], created=None) -> LabelledData:
    d = LabelledData([r[0] for r in rows], {"department": [r[1] for r in rows],
                                            "urgency": [r[2] for r in rows]})
    if created is not None:
        d.extra["created_at"] = created
    return d


# -- data assembly --------------------------------------------------------------------------------
def test_newer_label_wins_and_missing_label_does_not_erase():
    base = _data([("Where is my parcel?", "orders_shipping", "normal"),
                  ("I want a refund", "returns_refunds", "low")])
    newer = _data([("  where IS my   parcel? ", "complaints", None)])
    merged, stats = merge_sources([("base", base), ("corrections", newer)], HEADS)
    assert merged.texts == ["Where is my parcel?", "I want a refund"]
    assert merged.labels["department"] == ["complaints", "returns_refunds"]
    assert merged.labels["urgency"] == ["normal", "low"]  # the correction gave no urgency
    assert stats["duplicates_merged"] == 1 and stats["labels_changed"] == 1


def test_corrections_dedup_newest_wins_and_most_recent_are_held_out():
    ts = [T0 + dt.timedelta(minutes=m) for m in (5, 1, 9, 3, 7)]
    corr = _data([("a ticket", "general", "low"), ("b ticket", "general", "low"),
                  ("A  Ticket", "complaints", None), ("c ticket", "billing_payments", "high"),
                  ("d ticket", "orders_shipping", "normal")], created=ts)
    older, recent = split_corrections(corr, HEADS, holdout_fraction=0.3, seed=0)
    # "a ticket" was relabelled at minute 9: newest event, so it is the one held out
    assert recent.texts == ["a ticket"]
    assert recent.labels["department"] == ["complaints"] and recent.labels["urgency"] == ["low"]
    assert older.texts == ["b ticket", "c ticket", "d ticket"]  # by time: 1, 3, 7


def test_same_timestamp_ties_are_shuffled_by_seed_not_file_order():
    n = 40
    corr = _data([(f"t{i}", "general" if i < n // 2 else "complaints", None) for i in range(n)],
                 created=[T0] * n)
    _, recent = split_corrections(corr, HEADS, 0.5, seed=1)
    # a bulk import sorted by class must not put one class entirely in the held-out half
    assert 0 < recent.labels["department"].count("complaints") < n // 2
    _, again = split_corrections(corr, HEADS, 0.5, seed=1)
    assert again.texts == recent.texts


def test_held_out_and_frozen_texts_never_reach_training():
    base = _data([("frozen text", "general", "low"), ("kept", "general", "low"),
                  ("recent one", "general", "low")])
    corr = _data([("old fix", "complaints", "high"), ("Recent one", "complaints", "high")],
                 created=[T0, T0 + dt.timedelta(days=1)])
    out = assemble_data(base, None, corr, HEADS, RetrainConfig(holdout_fraction=0.5),
                        exclude_texts=["FROZEN text"])
    assert out.train.texts == ["kept", "old fix"]
    assert out.holdout.texts == ["Recent one"]
    assert out.stats["removed_frozen_texts"] == 1 and out.stats["removed_held_out_texts"] == 1


# -- end to end -----------------------------------------------------------------------------------
def _correction_log(tickets, tmp_path: Path) -> Path:
    """≥200 complaints corrected by agents, some of them tickets the model was trained on."""
    corrections = tickets["corrections"]
    base = tickets["base"]
    relabelled = [i for i, d in enumerate(base.labels["department"]) if d == CONFUSED][:20]
    rows = feedback_rows(corrections, T0)
    # agents also correct old tickets (re-typed, so only the normalised text matches)
    rows += [{"text": "  " + base.texts[i].upper() + " ", "department": CONFUSED, "urgency": None,
              "created_at": (T0 - dt.timedelta(days=2)).isoformat()} for i in relabelled]
    random.Random(0).shuffle(rows)  # the log need not be sorted
    return write_jsonl(tmp_path / "feedback.jsonl", rows)


def test_end_to_end_corrections_fix_confused_class(registry, tickets, tmp_path):
    feedback = read_feedback(_correction_log(tickets, tmp_path))
    assert len(feedback.corrections) >= 200
    result = retrain(registry, feedback=feedback, frozen=tickets["frozen"],
                     cache=EmbeddingCache(tmp_path / "emb.sqlite"), version="v0002",
                     report_dir=tmp_path / "report")
    gate = result.gate
    cur, cand = gate.corrections.current["department"], gate.corrections.candidate["department"]
    # the confused class's F1 on held-out corrections rises
    assert cur["per_class"].get(CONFUSED, {"f1": 0.0})["f1"] < 0.2
    assert cand["per_class"][CONFUSED]["f1"] > 0.8
    # frozen-set accuracy does not drop beyond the tolerance (for every head)
    for head, m in gate.frozen.current.items():
        assert gate.frozen.candidate[head]["accuracy"] >= m["accuracy"] - RetrainConfig().tolerance
    assert gate.passed and result.promoted
    assert registry.current() == "v0002"
    assert (registry.root / CURRENT_FILE).read_text().strip() == "v0002"
    assert resolve_bundle(registry.root).name == "v0002"
    last = registry.history()[-1]
    assert (last.from_version, last.to_version, last.action) == (BASE_VERSION, "v0002", "promote")
    assert last.reason.startswith("retrain: gate passed")
    # the held-out corrections are not in the candidate's training data; the relabels are
    stats = result.data
    assert stats["held_out"] == round(0.3 * stats["corrections_unique"])
    assert stats["labels_changed"] >= 20
    trained = {normalise_for_dedup(t) for t in
               load_training_data(registry.path("v0002"), list(HEADS)).texts}
    newest = tickets["corrections"].texts[-stats["held_out"]:]  # one minute apart, in order
    assert not trained & {normalise_for_dedup(t) for t in newest}
    assert len(trained) == stats["train_rows"]
    manifest = read_manifest(registry.path("v0002"))
    assert manifest["parent_version"] == BASE_VERSION
    assert manifest["metrics"]["gate"]["passed"] is True
    # the report: before/after metrics, confusion matrices, the classes that moved
    page = result.report.read_text()
    for needle in ("Frozen evaluation set", "Held-out recent corrections", "confusion matrices",
                   "classes that moved", CONFUSED, "promoted"):
        assert needle in page
    assert json.loads((result.report.parent / "gate.json").read_text())["promoted"] is True


def test_broken_candidate_is_rejected_and_served_model_unchanged(registry, tickets, tmp_path):
    # a labelling job gone wrong: every training ticket re-labelled with shuffled labels
    base = tickets["base"]
    shuffled = {h: list(base.labels[h]) for h in HEADS}
    rng = random.Random(7)
    for h in HEADS:
        rng.shuffle(shuffled[h])
    bad = write_jsonl(tmp_path / "bad.jsonl", data_rows(LabelledData(base.texts, shuffled)))
    from training.retrain import load_labelled_files

    new = load_labelled_files([bad], "text", {h: h for h in HEADS})
    feedback = read_feedback(_correction_log(tickets, tmp_path))
    current_before = (registry.root / CURRENT_FILE).read_bytes()
    history_before = registry.history()
    result = retrain(registry, new_data=new, feedback=feedback, frozen=tickets["frozen"],
                     version="v-broken", report_dir=tmp_path / "report")
    assert not result.gate.passed and not result.promoted
    assert any("frozen set" in r and "beyond tolerance" in r for r in result.gate.reasons)
    assert (registry.root / CURRENT_FILE).read_bytes() == current_before
    assert registry.history() == history_before
    assert registry.current() == BASE_VERSION
    # kept for inspection, marked rejected; the served bundle is untouched
    assert registry.summary("v-broken").gate["passed"] is False
    assert "rejected by the gate" in result.report.read_text()


def test_rollback_restores_previous_version(registry, tickets, tmp_path):
    feedback = read_feedback(_correction_log(tickets, tmp_path))
    result = retrain(registry, feedback=feedback, frozen=tickets["frozen"], version="v0002")
    assert result.promoted and registry.current() == "v0002"
    change = registry.rollback(reason="agents report misroutes")
    assert (change.from_version, change.to_version) == ("v0002", BASE_VERSION)
    assert registry.current() == BASE_VERSION
    assert resolve_bundle(registry.root).name == BASE_VERSION
    assert registry.history()[-1].action == "rollback"


def test_no_corrections_means_no_promotion(registry, tickets):
    result = retrain(registry, new_data=tickets["other"], frozen=tickets["frozen"],
                     version="v0002")
    assert not result.promoted and registry.current() == BASE_VERSION
    assert any("no held-out corrections" in r for r in result.gate.reasons)


def test_no_promote_builds_and_gates_only(registry, tickets, tmp_path):
    feedback = read_feedback(_correction_log(tickets, tmp_path))
    result = retrain(registry, feedback=feedback, frozen=tickets["frozen"], version="v0002",
                     config=RetrainConfig(promote=False))
    assert result.gate.passed and not result.promoted
    assert registry.current() == BASE_VERSION
    assert "v0002" in registry.versions()


def test_retrain_embeds_only_texts_the_cache_has_not_seen(registry, tickets, tmp_path):
    """Base rows come from the cache; only the new corrections and the frozen set are encoded."""

    class Counting(HashingEmbedder):
        encoded = 0

        def encode_queries(self, texts):
            Counting.encoded += len(texts)
            return super().encode_queries(texts)

    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    embedder = Counting(64)
    embedder.warm_up()
    base = load_training_data(registry.path(BASE_VERSION), list(HEADS))
    cache.encode(embedder, base.texts)  # as when the served bundle was trained
    Counting.encoded = 0
    corrections = tickets["corrections"]
    feedback = parse_rows(feedback_rows(corrections, T0), "memory")
    retrain(registry, feedback=feedback, frozen=tickets["frozen"], cache=cache,
            embedder=embedder, version="v0002")
    assert Counting.encoded == len(corrections) + len(tickets["frozen"])
    Counting.encoded = 0  # a second retrain on the same log encodes nothing
    retrain(registry, feedback=feedback, frozen=tickets["frozen"], cache=cache,
            embedder=embedder, version="v0003")
    assert Counting.encoded == 0


def test_candidate_learns_kb_priors_from_reply_decisions(registry, tickets):
    rows = feedback_rows(tickets["corrections"], T0)
    for n, row in enumerate(rows[:12]):
        row.update(article_id="parcel-delay-apology", decision="accepted",
                   predicted_department="orders_shipping", request_id=f"kb{n}")
    for n, row in enumerate(rows[12:20]):
        row.update(article_id="where-is-my-parcel", decision="rejected",
                   predicted_department="complaints", request_id=f"kb-r{n}")
    result = retrain(registry, feedback=parse_rows(rows, "memory"), frozen=tickets["frozen"],
                     version="v0002")
    from triage.kb import KnowledgeBaseIndex

    index = KnowledgeBaseIndex.load(registry.path("v0002") / "kb", HashingEmbedder(64))
    assert index.priors["parcel-delay-apology"] > 0.015
    assert index.priors["where-is-my-parcel|complaints"] < -0.01
    assert "where-is-my-parcel" not in index.priors  # rejections lower it only for that department
    assert result.kb["reply_decisions"] == 20
    served = KnowledgeBaseIndex.load(registry.path(BASE_VERSION) / "kb", HashingEmbedder(64))
    assert served.priors == {}  # the served bundle is never modified


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_retrain_json(registry, tickets, tmp_path, frozen_file, capsys):
    log = _correction_log(tickets, tmp_path)
    rc = main(["retrain", "--registry", str(registry.root), "--feedback", str(log),
               "--frozen", str(frozen_file), "--report", str(tmp_path / "rep"), "--json",
               "--version", "v0002"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["promoted"] is True and out["candidate_version"] == "v0002"
    gate = out["gate"]
    assert set(gate["frozen"]) >= {"current", "candidate"}
    assert set(gate["corrections"]) >= {"current", "candidate"}
    assert gate["frozen"]["candidate"]["department"]["accuracy"] >= \
        gate["frozen"]["current"]["department"]["accuracy"] - 0.01
    assert (tmp_path / "rep" / "index.html").is_file()
    assert registry.current() == "v0002"


def test_cli_retrain_errors_are_one_line(tmp_path, capsys):
    rc = main(["retrain", "--registry", str(tmp_path / "empty"), "--frozen", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "no served version" in err and "Traceback" not in err


def test_cli_retrain_reads_feedback_from_database(registry, tickets, tmp_path, frozen_file, capsys):
    pytest.importorskip("api.storage")
    from test_feedback_io import make_database

    db = make_database(tmp_path / "triage.db", feedback_rows(tickets["corrections"], T0))
    rc = main(["retrain", "--registry", str(registry.root), "--feedback", f"sqlite:///{db}",
               "--frozen", str(frozen_file), "--json", "--no-promote", "--version", "v0002"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["data"]["corrections"] == len(tickets["corrections"])
    assert out["gate"]["passed"] is True and out["promoted"] is False
    assert ENCODER in read_manifest(registry.path("v0002"))["encoder"]


def test_cli_kb_candidates(registry, tmp_path, capsys):
    rows = [{"text": "my parcel is late", "created_at": f"2025-03-0{d}T10:00:00Z",
             "request_id": f"r{d}", "article_id": "parcel-delay-apology", "decision": "edited",
             "final_text": "Sorry for the delay: we have sent you a voucher.",
             "predicted_department": "orders_shipping"} for d in (1, 2)]
    rows.append({"text": "refund?", "request_id": "r3", "article_id": "refund-status",
                 "decision": "edited", "final_text": "Refunds take 5 to 10 days."})  # unchanged
    log = write_jsonl(tmp_path / "fb.jsonl", rows)
    assert main(["kb", "candidates", "--feedback", str(log), "--registry", str(registry.root),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(c["article_id"], c["count"], c["article_title"]) for c in out] == [
        ("parcel-delay-apology", 2, "Delayed parcel")]
    assert main(["kb", "candidates", "--feedback", str(log), "--registry", str(registry.root)]) == 0
    assert "voucher" in capsys.readouterr().out
