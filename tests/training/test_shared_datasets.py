"""Real external data through the CLI (needs ../shared/data; fails saying so when absent)."""

import csv
import json

import pytest

from training.cli import main

pytestmark = [pytest.mark.shared_data, pytest.mark.real_model]


def _subset(src, dst, text_col, label_col, every):
    with src.open(newline="", encoding="utf-8") as f, dst.open("w", newline="", encoding="utf-8") as g:
        rows = list(csv.DictReader(f))[::every]
        w = csv.DictWriter(g, fieldnames=[text_col, label_col])
        w.writeheader()
        w.writerows({text_col: r[text_col], label_col: r[label_col]} for r in rows)


def test_banking77_subset_with_the_real_encoder(shared_data, tmp_path, capsys):
    """A fifth of Banking77 with USE-multilingual: far above chance (1/77), through the CLI."""
    _subset(shared_data / "banking77" / "train.csv", tmp_path / "train.csv", "text", "category", 5)
    _subset(shared_data / "banking77" / "test.csv", tmp_path / "test.csv", "text", "category", 5)
    assert main(["train", "--data", str(tmp_path / "train.csv"), "--text-column", "text",
                 "--label", "intent=category", "--out", str(tmp_path / "b"), "--encoder", "usem3",
                 "--loss", "hinge", "--C", "0.5", "--cv", "2"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "b"), "--data", str(tmp_path / "test.csv"),
                 "--text-column", "text", "--label", "intent=category", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["intent"]
    assert metrics["accuracy"] > 0.80
    assert 0 < metrics["coverage"] <= 1
