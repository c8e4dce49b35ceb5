"""Download the published compact models (``compactrig models fetch``).

Fetches the public repository archive of cowleygroup/V4_compact_models, keeps only
``models_torch/`` and ``nums_filters/``, checks that every model loads, and only then
moves the bank into place, so a failed or interrupted fetch never leaves half a bank.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

from platformdirs import user_data_dir

from engine.bank import ModelBank, load_directory
from engine.errors import CompactRigError

DEFAULT_URL = "https://github.com/cowleygroup/V4_compact_models/archive/HEAD.zip"
KEPT_FOLDERS = ("models_torch", "nums_filters")
Progress = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes or None when the server does not say)."""


def default_models_dir() -> Path:
    """Where fetched models live: the user data directory, e.g. ``~/.local/share/compactrig/models``."""
    return Path(user_data_dir("compactrig")) / "models"


def download(url: str, target: Path, progress: Progress | None = None, timeout: float = 30.0) -> None:
    """Stream ``url`` (http, https or file) into ``target``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            while block := response.read(1 << 16):
                out.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
    except urllib.error.HTTPError as error:
        raise CompactRigError(f"could not download {url}: the server answered HTTP {error.code} "
                              f"({error.reason}); check --url") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise CompactRigError(
            f"could not download {url} ({reason}); check the network, or pass --url with a "
            "reachable copy of the archive (a file:// URL works offline)") from None


def extract_models(archive: Path, folder: Path) -> int:
    """Copy the ``models_torch/*.pt`` and ``nums_filters/*.npy`` members into ``folder``."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            count = 0
            for member in bundle.infolist():
                path = PurePosixPath(member.filename)
                if member.is_dir() or len(path.parts) < 2 or path.parent.name not in KEPT_FOLDERS:
                    continue
                destination = folder / path.parent.name / path.name
                destination.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out)
                count += 1
    except zipfile.BadZipFile:
        raise CompactRigError(f"{archive}: the download is not a zip archive; check --url") from None
    if count == 0:
        raise CompactRigError("the archive holds no models_torch/ or nums_filters/ files; check --url")
    return count


def verify(folder: Path) -> ModelBank:
    """Load every model of the bank in ``folder``; raises naming the first that fails."""
    bank = load_directory(folder)
    for neuron_id in bank.neuron_ids:
        bank.model(neuron_id)
    return bank


def fetch_models(dest: Path | None = None, url: str = DEFAULT_URL,
                 progress: Progress | None = None) -> ModelBank:
    """Download, extract and verify the published bank into ``dest`` (replacing an older copy)."""
    dest = Path(dest).expanduser() if dest else default_models_dir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as scratch:
        archive = Path(scratch) / "archive.zip"
        download(url, archive, progress)
        staged = Path(scratch) / "bank"
        extract_models(archive, staged)
        verify(staged)
        if dest.exists():
            shutil.rmtree(dest)
        staged.rename(dest)
    return load_directory(dest)
