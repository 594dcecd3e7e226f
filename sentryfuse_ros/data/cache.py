"""Where the benchmark lives on disk and how its manifest is checked.

<data dir>/sources/    downloaded .debs, the files extracted from them, the clip bank
<data dir>/benchmark/  manifest.json and one safetensors file per split
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sentryfuse_ros.digest import file_sha256

# Bump when the build code changes what it writes without a BuildConfig change, so that
# existing caches are reported as outdated instead of silently reused.
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test", "test_sklearn")
MANIFEST_NAME = "manifest.json"
PREPARE_HINT = "run `sentryfuse data prepare` (add --data-dir DIR if you use a non-default location)"


class CacheError(RuntimeError):
    """The built benchmark is missing, corrupt or outdated; the message says how to fix it."""


def default_data_dir() -> Path:
    """$SENTRYFUSE_DATA_DIR if set, else ~/.cache/sentryfuse (outside the repo, shared by clones)."""
    configured = os.environ.get("SENTRYFUSE_DATA_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "sentryfuse"


def sources_dir(data_dir: Path) -> Path:
    return data_dir / "sources"


def benchmark_dir(data_dir: Path, limit: int | None = None) -> Path:
    return data_dir / ("benchmark" if limit is None else f"benchmark-limit{limit}")


def split_file(bench_dir: Path, split: str) -> Path:
    return bench_dir / f"{split}.safetensors"


def read_manifest(bench_dir: Path) -> dict:
    path = bench_dir / MANIFEST_NAME
    if not path.is_file():
        raise CacheError(f"no benchmark at {bench_dir}: {PREPARE_HINT}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CacheError(f"{path} is unreadable ({error}): {PREPARE_HINT} --force") from error
    if not isinstance(manifest, dict) or "splits" not in manifest or "fingerprint" not in manifest:
        raise CacheError(f"{path} is not a benchmark manifest: {PREPARE_HINT} --force")
    return manifest


def check_manifest(bench_dir: Path, manifest: dict, fingerprint: str, verify_checksums: bool) -> None:
    """Raise CacheError unless the manifest matches `fingerprint` and every split file is intact."""
    if manifest["fingerprint"] != fingerprint:
        raise CacheError(f"the benchmark at {bench_dir} was built by a different version or recipe: {PREPARE_HINT}")
    for split in SPLITS:
        entry = manifest["splits"].get(split)
        path = split_file(bench_dir, split)
        if entry is None or not path.is_file():
            raise CacheError(f"{path} is missing: {PREPARE_HINT} --force")
        if path.stat().st_size != entry["bytes"]:
            raise CacheError(f"{path} has the wrong size (truncated or replaced): {PREPARE_HINT} --force")
        if verify_checksums and file_sha256(path) != entry["sha256"]:
            raise CacheError(f"{path} does not match its checksum (corrupt): {PREPARE_HINT} --force")


def is_up_to_date(bench_dir: Path, fingerprint: str) -> bool:
    """True when an intact build with this fingerprint is at bench_dir (checksums verified)."""
    try:
        check_manifest(bench_dir, read_manifest(bench_dir), fingerprint, verify_checksums=True)
    except CacheError:
        return False
    return True
