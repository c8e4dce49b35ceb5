"""A bank folder's content hash, kept between runs so opening a bank of 219 models stays instant.

The identity (``ModelBank.identity``: a SHA-256 over every weight, by neuron id) needs every
model's weights, which takes about 2 s for the published bank; each command that writes
provenance (``predict --out FILE.zarr``, ``screen``, ``synth``, sessions) would pay it again. It is
kept in the user cache directory (``COMPACTRIG_CACHE_DIR`` when set), under a key made of the
folder's path and each model file's name, size and modification time, so any change to a file
makes a new key and the hash is computed afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import platformdirs


def cache_root() -> Path:
    """The user cache directory of CompactRig (``COMPACTRIG_CACHE_DIR`` when set): what only saves time."""
    return Path(os.environ.get("COMPACTRIG_CACHE_DIR") or platformdirs.user_cache_dir("compactrig"))


def cache_dir() -> Path:
    return cache_root() / "banks"


def folder_signature(folder: Path, files: Iterable[Path]) -> str:
    """A key that changes whenever any of ``files`` (the bank's weight and filter files) changes."""
    digest = hashlib.sha256(str(Path(folder).resolve()).encode())
    for path in sorted(files):
        status = path.stat()
        digest.update(f"\n{path.name} {status.st_size} {status.st_mtime_ns}".encode())
    return digest.hexdigest()


def cached_identity(signature: str, compute: Callable[[], dict]) -> dict:
    """The identity stored under ``signature``, or ``compute()``'s, stored for next time (a cache that cannot
    be read or written is skipped: it only saves time)."""
    path = cache_dir() / f"{signature}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    identity = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(identity))
        partial.replace(path)
    except OSError:
        pass
    return identity
