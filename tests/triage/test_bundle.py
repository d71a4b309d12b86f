"""Bundles: save/load round trip, manifest contents, version checks, registry pointer."""

import json

import numpy as np
import pytest

from triage.bundle import BundleError, check_compatible, read_manifest, resolve_bundle
from triage.service import MessageInput, TriageService


def test_manifest_has_what_operators_need(fake_bundle):
    m = read_manifest(fake_bundle)
    for key in ("version", "created_at", "encoder", "label_sets", "library_versions",
                "training_data_sha256", "metrics", "bundle_format"):
        assert key in m, key
    assert set(m["label_sets"]) == {"department", "urgency"}
    assert len(m["label_sets"]["department"]) == 8
    assert m["library_versions"]["scikit-learn"]
    assert len(m["training_data_sha256"]) == 64
    assert m["kb"]["articles"] == 30


def test_round_trip_gives_identical_predictions(fake_bundle, fake_embedder, seed_small):
    a = TriageService.from_bundle(fake_bundle, embedder=fake_embedder)
    b = TriageService.from_bundle(fake_bundle, embedder=fake_embedder)
    texts = seed_small.texts[:20]
    pa, pb = a.model.predict(texts), b.model.predict(texts)
    for x, y in zip(pa, pb):
        for head in x:
            assert x[head].label == y[head].label
            assert np.isclose(x[head].confidence, y[head].confidence)


def test_other_library_versions_are_a_clear_error(fake_bundle, tmp_path):
    manifest = read_manifest(fake_bundle)
    manifest["library_versions"]["scikit-learn"] = "0.24.2"
    with pytest.raises(BundleError, match=r"scikit-learn 0\.24\.2 \(bundle\)"):
        check_compatible(manifest, tmp_path)
    manifest = read_manifest(fake_bundle)
    manifest["bundle_format"] = 99
    with pytest.raises(BundleError, match="format"):
        check_compatible(manifest, tmp_path)


def test_loading_a_bundle_from_other_versions_fails_cleanly(fake_bundle, tmp_path, fake_embedder):
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(fake_bundle, copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["library_versions"]["numpy"] = "1.0.0"
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="numpy"):
        TriageService.from_bundle(copy, embedder=fake_embedder)


def test_registry_pointer_resolution(fake_bundle, tmp_path):
    import shutil

    shutil.copytree(fake_bundle, tmp_path / "v1")
    (tmp_path / "CURRENT").write_text("v1\n")
    assert resolve_bundle(tmp_path) == tmp_path / "v1"
    (tmp_path / "CURRENT").write_text("missing\n")
    with pytest.raises(BundleError, match="not a bundle"):
        resolve_bundle(tmp_path)
    with pytest.raises(BundleError, match="no such model directory"):
        resolve_bundle(tmp_path / "nope")


def test_service_analyze_shape(fake_bundle, fake_embedder):
    service = TriageService.from_bundle(fake_bundle, embedder=fake_embedder)
    out = service.analyze(MessageInput(text="Where is my parcel? Order 12345",
                                       context={"customer_name": "Ana"})).to_dict()
    assert out["department"]["label"] in service.model.label_sets["department"]
    assert out["urgency"]["band"] in ("high", "medium", "low")
    assert out["language"]["code"] == "en"
    assert isinstance(out["needs_review"], bool)
    assert out["model_version"] == "test-fake"
    assert "items" in out["suggestions"]


def test_urgency_signal_raises_the_floor(fake_bundle, fake_embedder):
    service = TriageService.from_bundle(fake_bundle, embedder=fake_embedder)
    out = service.analyze(MessageInput(
        text="The charger started to smoke and burned my hand, I will contact my lawyer"
    )).to_dict()
    assert out["urgency"]["label"] == "urgent"
    assert {s["signal"] for s in out["urgency_signals"]} >= {"safety_hazard", "legal_threat"}
