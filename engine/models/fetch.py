"""Download the published compact models (``compactrig models fetch``).

Fetches the archive of cowleygroup/V4_compact_models at a pinned commit, keeps only
``models_torch/`` and ``nums_filters/``, checks that every model loads and that the weights are
exactly the published ones (the bank's content hash, the one stimulus sets record as
provenance), and only then swaps the bank into place: the old copy is renamed aside, the new
one renamed in, the old one removed. A fetch that fails or is interrupted never leaves half a
bank, and a swap cut between its two renames is finished by the next fetch or load.

Only a bank this fetch made is ever replaced: every fetched bank holds ``.compactrig-fetched.json``
(where it came from), and an existing folder without it (a user's folder, a bank of their own) is
refused before anything is downloaded unless the caller says ``force``; a ``DEST.previous`` that is
not a bank set aside by a fetch is never touched.

The archive is data from the network: a member whose name leaves the archive is refused, and the
model files are extracted block by block within ``MAX_MODEL_FILE_BYTES`` each and ``MAX_BANK_BYTES`` in
all (the sizes the zip declares, checked before anything is extracted; no member is read past its
declared size), so a hostile or broken archive is one line, never a full disk.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from platformdirs import user_data_dir

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.inside_folder import check_member_name
from compactrig.engine.files.safe_output import check_writable_folder
from compactrig.engine.models.bank import ModelBank, load_directory
from compactrig.engine.progress import Progress

PUBLISHED_COMMIT = "f4552ad9d34a466ebc66658f72a08a8e5038f1cf"
"""The commit of cowleygroup/V4_compact_models whose models CompactRig was checked against."""
DEFAULT_URL = f"https://github.com/cowleygroup/V4_compact_models/archive/{PUBLISHED_COMMIT}.zip"
PUBLISHED_SHA256 = "d09040253dc55a1651c7aee671f48628d0e145f0b42959f62318cc94404e4ae2"
"""``ModelBank.identity()["sha256"]`` of the 219 published models (over every weight, by neuron id)."""
KEPT_FOLDERS = ("models_torch", "nums_filters")
FETCHED_MARK = ".compactrig-fetched.json"
"""Written into every bank a fetch makes: what may be replaced by the next fetch."""
MAX_MODEL_FILE_BYTES = 64 * 2**20
"""The largest model file extracted: the published ones are under 250 kB, so 64 MiB is generous for any bank in
their layout and still refuses a member built to fill the disk."""
MAX_BANK_BYTES = 2**30
"""The most extracted in all: the published bank is about 26 MB (219 models), so 1 GiB leaves room for banks
forty times larger; anything beyond is not a bank."""
ADDRESS_GIVEN = "with --url on the command line, or in the COMPACTRIG_MODELS_URL variable (what the window reads)"
CHECK_ADDRESS = f"check the archive's address (given {ADDRESS_GIVEN})"
"""The fix named by every refusal of a download: the same whether the command line or the window fetched."""
READ_BLOCK = 1 << 20
"""Bytes copied out of a member at a time."""


def models_url() -> str:
    """The archive to fetch: ``COMPACTRIG_MODELS_URL`` (a lab's mirror, or a file:// copy on a machine with no
    internet) or the pinned commit on GitHub. The content hash is checked either way."""
    return os.environ.get("COMPACTRIG_MODELS_URL") or DEFAULT_URL


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
                              f"({error.reason}); {CHECK_ADDRESS}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise CompactRigError(
            f"could not download {url} ({reason}); check the network, or name a reachable copy of the archive "
            f"(a file:// URL works offline) {ADDRESS_GIVEN}") from None


def _kept_members(bundle: zipfile.ZipFile, archive: Path) -> list[zipfile.ZipInfo]:
    """The ``models_torch/`` and ``nums_filters/`` files of the archive, every name checked to stay inside it and
    every declared size within the caps, before anything is extracted."""
    kept, total = [], 0
    for member in bundle.infolist():
        path = PurePosixPath(member.filename)
        if member.is_dir() or len(path.parts) < 2 or path.parent.name not in KEPT_FOLDERS:
            continue
        check_member_name(member.filename, archive)
        if path.name in ("", ".", ".."):
            continue
        if member.file_size > MAX_MODEL_FILE_BYTES:
            raise CompactRigError(_too_large(member.filename, member.file_size))
        total += member.file_size
        if total > MAX_BANK_BYTES:
            raise CompactRigError(f"the archive's models declare more than {MAX_BANK_BYTES // 2**20} MiB in all (a "
                                  f"bank is a few tens of MB); it is not the published archive: {CHECK_ADDRESS}")
        kept.append(member)
    return kept


def _too_large(name: str, size: int) -> str:
    return (f"archive member {name} declares {size:,} bytes, more than the {MAX_MODEL_FILE_BYTES // 2**20} MiB a "
            f"model file may be (the published ones are under 1 MB); it is not the published archive: {CHECK_ADDRESS}")


def extract_models(archive: Path, folder: Path) -> int:
    """Copy the ``models_torch/*.pt`` and ``nums_filters/*.npy`` members into ``folder``, streamed, within
    ``MAX_MODEL_FILE_BYTES`` each and ``MAX_BANK_BYTES`` in all: their declared sizes are checked first, and
    ``zipfile`` never reads a member past its declared size (a longer one fails its CRC check)."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = _kept_members(bundle, archive)
            for member in members:
                path = PurePosixPath(member.filename)
                destination = folder / path.parent.name / path.name
                destination.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out, READ_BLOCK)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise CompactRigError(f"{archive}: the download is not a zip archive, or a damaged one ({error}); "
                              f"{CHECK_ADDRESS}") from None
    except (NotImplementedError, RuntimeError) as error:  # a compression method zipfile lacks, or encryption
        raise CompactRigError(f"{archive}: {error}; {CHECK_ADDRESS}") from None
    if not members:
        raise CompactRigError(f"the archive holds no models_torch/ or nums_filters/ files; {CHECK_ADDRESS}")
    return len(members)


def verify(folder: Path) -> ModelBank:
    """Load every model of the bank in ``folder``; raises naming the first that fails."""
    bank = load_directory(folder)
    for neuron_id in bank.neuron_ids:
        bank.model(neuron_id)
    return bank


def previous_copy(dest: Path) -> Path:
    """Where the bank being replaced waits while the new one is renamed in."""
    return dest.with_name(dest.name + ".previous")


def is_fetched_bank(folder: Path) -> bool:
    """True when ``folder`` is a bank a fetch made (its mark), or the default models folder (or its set-aside
    copy) holding only the bank's two folders, as fetches before the mark left it."""
    folder = Path(folder)
    if (folder / FETCHED_MARK).is_file():
        return True
    default = default_models_dir()
    return (folder.is_dir() and folder.absolute() in (default.absolute(), previous_copy(default).absolute())
            and {p.name for p in folder.iterdir()} <= set(KEPT_FOLDERS))


def finish_interrupted_swap(dest: Path) -> None:
    """A swap cut between its renames left the old bank aside and none in place: put it back."""
    if not dest.exists() and previous_copy(dest).is_dir() and is_fetched_bank(previous_copy(dest)):
        previous_copy(dest).rename(dest)


def check_destination(dest: Path, force: bool = False) -> None:
    """Refuse (before any download) a ``dest`` that is a file, that holds files without being a fetched bank (unless
    ``force``: then it is replaced), that cannot be written, or whose ``.previous`` is someone else's."""
    aside = previous_copy(dest)
    if aside.exists() and not is_fetched_bank(aside):
        raise CompactRigError(f"{aside} exists and is not a bank set aside by `compactrig models fetch`; move it away "
                              "first (the fetch would need that name)")
    if dest.exists() and not dest.is_dir():
        raise CompactRigError(f"--dest {dest}: is a file, not a folder; choose a folder")
    if dest.is_dir() and any(dest.iterdir()) and not is_fetched_bank(dest) and not force:
        raise CompactRigError(f"--dest {dest}: holds files and is not a bank fetched by CompactRig; choose a new or "
                              "empty folder, or add --force to replace it (everything in it is deleted)")
    check_writable_folder(dest.parent, "--dest")


def fetch_models(dest: Path | None = None, url: str | None = None, progress: Progress | None = None,
                 sha256: str | None = PUBLISHED_SHA256, force: bool = False) -> ModelBank:
    """Download, extract and verify the published bank into ``dest`` (replacing a bank fetched before; any other
    non-empty folder only with ``force``). ``sha256`` is the content hash the weights must have (None: any, for
    a bank that is not the published one)."""
    dest = Path(dest).expanduser() if dest else default_models_dir()
    url = url or models_url()
    finish_interrupted_swap(dest)
    check_destination(dest, force)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as scratch:
        archive = Path(scratch) / "archive.zip"
        download(url, archive, progress)
        staged = Path(scratch) / "bank"
        extract_models(archive, staged)
        found = str(verify(staged).identity()["sha256"])
        if sha256 is not None and found != sha256:
            raise CompactRigError(f"the models from {url} are not the published ones (content hash {found[:16]}..., "
                                  f"expected {sha256[:16]}...); {CHECK_ADDRESS}, or, if you trust this copy, "
                                  f"fetch it with `compactrig models fetch --sha256 {found}`")
        (staged / FETCHED_MARK).write_text(json.dumps({"url": url, "sha256": found}, indent=1))
        aside = previous_copy(dest)
        if aside.exists():
            shutil.rmtree(aside)  # a fetched bank set aside (check_destination refused any other)
        if dest.exists():
            dest.rename(aside)
        staged.rename(dest)
        if aside.exists():
            shutil.rmtree(aside)
    return load_directory(dest)
