"""The `triage` CLI end to end on small files: train, evaluate, analyze, index, evaluate-kb."""

import json

import pytest

from tests.conftest import KB_DIR
from training.cli import main


@pytest.fixture(scope="module")
def small_files(tmp_path_factory, seed_small):
    d = tmp_path_factory.mktemp("cli")
    train, test = d / "train.jsonl", d / "test.csv"
    with train.open("w", encoding="utf-8") as f:
        for i, text in enumerate(seed_small.texts[:300]):
            f.write(json.dumps({"body": text, "dept": seed_small.labels["department"][i],
                                "prio": seed_small.labels["urgency"][i]}, ensure_ascii=False) + "\n")
    import csv

    with test.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["body", "dept", "prio"])
        for i, text in enumerate(seed_small.texts[300:400]):
            w.writerow([text, seed_small.labels["department"][i + 300],
                        seed_small.labels["urgency"][i + 300]])
        w.writerow(["a label the model never saw", "loyalty_programme", "normal"])
    return d, train, test


@pytest.fixture(scope="module")
def trained(small_files):
    d, train, _ = small_files
    out = d / "bundle"
    rc = main(["train", "--data", str(train), "--text-column", "body", "--label", "department=dept",
               "--label", "urgency=prio", "--out", str(out), "--encoder", "fake:64",
               "--kb", str(KB_DIR)])
    assert rc == 0
    return out


def test_train_writes_a_bundle(trained):
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["encoder"] == "fake:64"
    assert manifest["n_training_rows"] == 300
    assert manifest["kb"]["articles"] >= 80


def test_evaluate_json_and_report(trained, small_files, capsys, tmp_path):
    _, _, test = small_files
    rc = main(["evaluate", "--model", str(trained), "--data", str(test), "--text-column", "body",
               "--label", "department=dept", "--label", "urgency=prio", "--json",
               "--report", str(tmp_path / "report")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for head in ("department", "urgency"):
        for key in ("accuracy", "macro_f1", "coverage", "accuracy_covered"):
            assert 0.0 <= out[head][key] <= 1.0
    assert out["department"]["unseen_labels"] == ["loyalty_programme"]
    assert out["department"]["n"] == 101
    assert (tmp_path / "report" / "index.html").read_text().count("<img") == 4
    assert (tmp_path / "report" / "department_confusion.png").stat().st_size > 1000


def test_analyze_one_and_many(trained, small_files, capsys):
    rc = main(["analyze", "--model", str(trained), "Mi pedido no ha llegado todavía"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["language"]["code"] == "es"
    assert {"department", "urgency", "needs_review", "suggestions"} <= set(result)
    _, _, test = small_files
    rc = main(["analyze", "--model", str(trained), "--data", str(test), "--text-column", "body"])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 101 and all("department" in json.loads(line) for line in lines)


def test_index_and_evaluate_kb(trained, capsys):
    assert main(["index", "--model", str(trained), "--kb", str(KB_DIR)]) == 0
    capsys.readouterr()
    assert main(["evaluate-kb", "--model", str(trained), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("recall_at_1", "recall_at_3", "mrr", "language_match", "per_language"):
        assert key in out
    assert set(out["per_language"]) == {q.stem for q in (KB_DIR / "queries").glob("*.jsonl")}
    assert main(["evaluate-kb", "--model", str(trained), "--json", "--no-refusal"]) == 0
    unrefused = json.loads(capsys.readouterr().out)
    assert unrefused["refused"] == 0.0
    assert unrefused["recall_at_3"] >= out["recall_at_3"]  # refusals only ever cost recall


def test_user_errors_exit_2_with_a_message(small_files, capsys, tmp_path):
    _, train, _ = small_files
    assert main(["train", "--data", str(train), "--text-column", "nope", "--label", "d=dept",
                 "--out", str(tmp_path / "x"), "--encoder", "fake:8"]) == 2
    assert "missing column(s) nope" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "absent.csv"), "--text-column", "t",
                 "--label", "d=x", "--out", str(tmp_path / "y")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["train", "--data", str(train), "--text-column", "body", "--label", "oops",
                 "--out", str(tmp_path / "z")]) == 2
    assert "HEAD=COLUMN" in capsys.readouterr().err
    assert main(["analyze", "--model", str(tmp_path / "none"), "hi"]) == 2
    assert "no such model directory" in capsys.readouterr().err
