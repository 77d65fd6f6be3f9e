"""Saved artefacts: JSON manifests, sha256 identities, library versions; shared by encoder and classifier."""
from __future__ import annotations

import hashlib
import json
import math
import platform
from pathlib import Path

from encoder.io.errors import ArtifactError, InputError

ENCODER_FORMAT_VERSION = 3  # 2: step codes pooled to the code (1 pooled states, then projected);
# 3: the config in parts (data, network, blocks, noise, training), ``code_width`` for the code's width


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def library_versions() -> dict:
    """Versions of the libraries a saved artefact depends on."""
    from importlib.metadata import PackageNotFoundError, version

    import numpy
    import pandas
    import pyarrow
    import sklearn
    import torch
    import xgboost
    try:
        seqae = version("seqae")
    except PackageNotFoundError:
        seqae = "unknown"
    return {"seqae": seqae, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "pandas": pandas.__version__, "pyarrow": pyarrow.__version__,
            "scikit-learn": sklearn.__version__, "xgboost": xgboost.__version__}


def _finite(value):
    """NaN and infinity become null: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path: str | Path, data: dict) -> None:
    """Write ``data`` as indented JSON (numpy scalars as numbers, NaN as null)."""
    text = json.dumps(_finite(json.loads(json.dumps(data, default=_jsonable))), indent=2, allow_nan=False)
    Path(path).write_text(text + "\n")


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


class Manifest(dict):
    """A manifest's JSON object: a key it lacks is an ``ArtifactError`` naming the file and the key
    (a hand-edited or truncated manifest), never a ``KeyError``."""

    path: str = "manifest.json"

    def __missing__(self, key):
        raise ArtifactError(f"manifest '{self.path}' lacks the key '{key}'")


def _manifest_object(path: Path):
    def hook(pairs: dict) -> Manifest:
        m = Manifest(pairs)
        m.path = str(path)
        return m
    return hook


def artifact_path(directory: str | Path, name, what: str) -> Path:
    """The file ``name`` of an artefact directory, refused unless it is a plain relative name that
    stays inside ``directory`` (a manifest must not point at files elsewhere)."""
    directory = Path(directory)
    if not isinstance(name, str) or not name:
        raise ArtifactError(f"manifest of '{directory}' names its {what} file as {name!r}, not a file name")
    path = directory / name
    if Path(name).is_absolute() or not path.resolve().is_relative_to(directory.resolve()):
        raise ArtifactError(f"manifest of '{directory}' names its {what} file '{name}', outside the directory")
    return path


def read_manifest(directory: str | Path, kind: str, format_version: int, oldest: int = 1) -> dict:
    """Read ``directory/manifest.json`` of the given ``kind``; refuse a missing directory, newer formats
    and formats older than ``oldest`` (whose model this seqae can no longer rebuild)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{kind} directory '{directory}' does not exist")
    path = directory / "manifest.json"
    if not path.exists():
        raise ArtifactError(f"'{directory}' is not a {kind} directory: no manifest.json")
    try:
        manifest = json.loads(path.read_text(), object_hook=_manifest_object(path))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ArtifactError(f"manifest '{path}' is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"manifest '{path}' is not a JSON object")
    if manifest.get("format") != f"seqae-{kind}":
        raise ArtifactError(f"'{directory}' is not a {kind} directory (format {manifest.get('format')!r})")
    found = manifest.get("format_version")
    if not isinstance(found, int) or found > format_version:
        raise ArtifactError(f"{kind} '{directory}' has manifest format version {found}, newer than this "
                            f"seqae reads ({format_version}); upgrade seqae")
    if found < oldest:
        raise ArtifactError(f"{kind} '{directory}' has manifest format version {found}, older than this "
                            f"seqae reads ({oldest}); train it again")
    return manifest


def verify_hash(path: Path, expected: str, what: str) -> None:
    """Refuse a weights/model file whose sha256 is not the one its manifest recorded."""
    if not path.exists():
        raise ArtifactError(f"{what} file '{path}' is missing")
    actual = sha256_file(path)
    if actual != expected:
        raise ArtifactError(f"{what} file '{path}' does not match its manifest (sha256 {actual[:12]}…, "
                            f"expected {expected[:12]}…): it was changed or corrupted")


def read_encoder_manifest(directory: str | Path) -> dict:
    """The manifest of an encoder directory, its format checked and its weights' sha256 verified;
    without torch, so ``encoder inspect`` answers at once."""
    manifest = read_manifest(directory, "encoder", ENCODER_FORMAT_VERSION, oldest=2)
    verify_hash(artifact_path(directory, manifest["weights"], "weights"), manifest["encoder_id"], "weights")
    return manifest
