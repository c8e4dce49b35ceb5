"""``compactrig models fetch`` against a real HTTP server on loopback serving an upstream-like zip."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import struct
import threading
import zipfile

import pytest

from compactrig.engine.files.image_files import read_images
from compactrig.engine.models.bank import load_directory
from compactrig.engine.models.fast_predict import Predictor
from compactrig.engine.models.fetch import DEFAULT_URL, PUBLISHED_COMMIT

from support.commands import run_cli
from support.user_input import click, open_tab

SUBSET = ["201025_neuron2", "201025_neuron3", "190923_neuron0"]


@pytest.fixture(scope="module")
def served(tmp_path_factory, shared_data):
    """A loopback HTTP server holding an archive laid out like GitHub's of the pinned commit (every model),
    one with only three of the models, and an HTML page where a zip should be."""
    root = tmp_path_factory.mktemp("www")
    models = shared_data / "data_compact_models"
    top = f"V4_compact_models-{PUBLISHED_COMMIT}"
    everything = sorted(p.stem[len("compact_model_"):] for p in (models / "models_torch").iterdir())
    for name, neurons in (("repo.zip", everything),
                          ("subset.zip", SUBSET)):
        with zipfile.ZipFile(root / name, "w") as bundle:
            bundle.writestr(f"{top}/README.md", "upstream readme")
            bundle.write(shared_data / "data_V4_responses/responses_repeat_averaged/responses_190923.npy",
                         f"{top}/data_V4_responses/responses_repeat_averaged/responses_190923.npy")
            for neuron in neurons:
                for folder, suffix in (("models_torch", ".pt"), ("nums_filters", ".npy")):
                    bundle.write(models / folder / f"compact_model_{neuron}{suffix}",
                                 f"{top}/data_compact_models/{folder}/compact_model_{neuron}{suffix}")
    (root / "not_a_zip.zip").write_text("<html>rate limited</html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_default_source_is_the_pinned_commit():
    assert DEFAULT_URL.endswith(f"/archive/{PUBLISHED_COMMIT}.zip") and len(PUBLISHED_COMMIT) == 40


def test_fetch_keeps_only_the_published_models_and_they_predict_like_the_originals(served, tmp_path, shared_data):
    dest = tmp_path / "bank"
    result = run_cli("models", "fetch", "--dest", str(dest), "--url", f"{served}/repo.zip")
    assert result.returncode == 0, result.stderr
    assert "100%" in result.stderr, "a progress bar runs to completion"
    assert sorted(p.name for p in dest.iterdir()) == [".compactrig-fetched.json", "models_torch", "nums_filters"]
    assert len(list((dest / "models_torch").iterdir())) == 219
    images = read_images(shared_data / "data_V4_responses/images/images_201025.zip").pixels[::100]
    neurons = ["190923:5", "201025:2", "211022:41"]
    fetched, shared = (Predictor(load_directory(bank)).predict(images, neurons)
                       for bank in (dest, shared_data / "data_compact_models"))
    assert (fetched == shared).all()


def test_models_that_are_not_the_published_ones_are_refused_unless_trusted(served, tmp_path, cli):
    dest = tmp_path / "bank"
    refused = cli("models", "fetch", "--dest", str(dest), "--url", f"{served}/subset.zip")
    assert refused.returncode == 2 and "are not the published ones" in refused.stderr and not dest.exists()
    trusted = cli("models", "fetch", "--dest", str(dest), "--url", f"{served}/subset.zip", "--sha256", "any")
    assert trusted.returncode == 0, trusted.stderr
    listing = cli("models", "list", "--bank", str(dest))
    assert [line.split()[0] for line in listing.stdout.splitlines()[1:]] == ["190923:0", "201025:2", "201025:3"]


def test_a_swap_cut_between_its_renames_is_finished_by_the_next_load(served, tmp_path, monkeypatch, cli):
    """The old bank renamed aside, the process killed before the new one arrived: nothing is lost."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    models = tmp_path / "xdg" / "compactrig" / "models"
    assert cli("models", "fetch", "--url", f"{served}/subset.zip", "--sha256", "any").returncode == 0
    models.rename(models.with_name("models.previous"))
    listing = cli("models", "list", "--bank", "published")
    assert listing.returncode == 0 and "201025:3" in listing.stdout and models.is_dir()


def test_fetch_to_the_user_data_directory_then_use_it_as_published(served, tmp_path, cli):
    env_home = tmp_path / "xdg"
    os.environ["XDG_DATA_HOME"] = str(env_home)
    try:
        assert cli("models", "fetch", "--url", f"{served}/subset.zip", "--sha256", "any").returncode == 0
        assert (env_home / "compactrig" / "models" / "models_torch").is_dir()
        listing = cli("models", "list", "--bank", "published")
        assert listing.returncode == 0 and "201025:3" in listing.stdout
    finally:
        del os.environ["XDG_DATA_HOME"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("path, fragment", [
    (None, "could not download"),
    ("/missing.zip", "404"),
    ("/not_a_zip.zip", "not a zip archive"),
])
def test_failed_fetch_says_why_and_keeps_the_old_bank(served, tmp_path, path, fragment, cli):
    dest = tmp_path / "bank"
    assert cli("models", "fetch", "--dest", str(dest), "--url", f"{served}/subset.zip", "--sha256", "any"
               ).returncode == 0
    before = sorted(p.name for p in (dest / "models_torch").iterdir())
    url = f"http://127.0.0.1:{_closed_port()}/repo.zip" if path is None else f"{served}{path}"
    result = cli("models", "fetch", "--dest", str(dest), "--url", url, "--sha256", "any")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert fragment in result.stderr.splitlines()[-1]
    assert sorted(p.name for p in (dest / "models_torch").iterdir()) == before


def test_the_window_fetches_in_a_job_and_switches_to_the_published_bank(served, tmp_path, monkeypatch, qtbot,
                                                                       window):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COMPACTRIG_MODELS_URL", f"{served}/repo.zip")  # the lab's mirror
    tab = window.models
    open_tab(qtbot, window.tabs, tab)
    with qtbot.waitSignal(tab.bank_changed, timeout=120000) as changed:
        click(qtbot, tab.fetch_button)
    assert len(changed.args[0].neuron_ids) == 219
    assert tab.bank_choice.currentText() == "published" and tab.table.rowCount() == 219
    monkeypatch.setenv("COMPACTRIG_MODELS_URL", f"{served}/not_a_zip.zip")
    click(qtbot, tab.fetch_button)
    qtbot.waitUntil(lambda: "not a zip archive" in window.statusBar().currentMessage(), timeout=30000)
    assert tab.table.rowCount() == 219, "a failed fetch keeps the bank"


def test_fetch_onto_a_folder_of_the_users_is_refused_and_leaves_it_intact(served, tmp_path, cli):
    """Only a bank a fetch made is replaced; a user's folder needs --force, and the refusal comes before the
    download."""
    dest = tmp_path / "thesis"
    dest.mkdir()
    (dest / "chapter1.tex").write_text("years of work")
    (dest / "figures").mkdir()
    (dest / "figures" / "f1.pdf").write_bytes(b"%PDF")
    refused = cli("models", "fetch", "--dest", str(dest), "--url", f"{served}/subset.zip", "--sha256", "any")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "is not a bank fetched by CompactRig" in refused.stderr and "--force" in refused.stderr
    assert (dest / "chapter1.tex").read_text() == "years of work" and (dest / "figures" / "f1.pdf").is_file()
    assert "100%" not in refused.stderr, "refused before the download"
    forced = cli("models", "fetch", "--dest", str(dest), "--url", f"{served}/subset.zip", "--sha256", "any", "--force")
    assert forced.returncode == 0, forced.stderr
    fetched = sorted(p.name for p in (dest / "models_torch").iterdir())
    assert fetched == [f"compact_model_{n}.pt" for n in sorted(SUBSET)]
    assert not (dest / "chapter1.tex").exists()
    again = cli("models", "fetch", "--dest", str(dest), "--url", f"{served}/subset.zip", "--sha256", "any")
    assert again.returncode == 0, "a bank fetched before is replaced without --force"


def test_a_users_folder_named_like_the_set_aside_copy_is_never_touched(served, tmp_path, cli):
    dest = tmp_path / "bank"
    assert cli("models", "fetch", "--dest", str(dest), "--url", f"{served}/subset.zip", "--sha256", "any"
               ).returncode == 0
    users = tmp_path / "bank.previous"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    refused = cli("models", "fetch", "--dest", str(dest), "--url", f"{served}/subset.zip", "--sha256", "any")
    assert refused.returncode == 2 and "bank.previous exists and is not a bank set aside" in refused.stderr
    assert (users / "notes.txt").read_text() == "mine" and (dest / "models_torch").is_dir()


def declare_sizes(path, declared: int) -> None:
    """Make every member of the zip at ``path`` declare ``declared`` bytes uncompressed, in its local header and
    its central-directory record (offsets from the zip format, APPNOTE 4.3.7 and 4.3.12)."""
    raw = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = raw.find(signature)
        while start >= 0:
            raw[start + offset:start + offset + 4] = struct.pack("<I", declared)
            start = raw.find(signature, start + 4)
    path.write_bytes(bytes(raw))


def upstream_zip(path, members: dict[str, bytes]):
    """A zip laid out like GitHub's archive of the models repository, holding ``members`` (deflated)."""
    top = f"V4_compact_models-{PUBLISHED_COMMIT}/data_compact_models"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(f"{top}/{name}", data)
    return path


def test_a_model_file_larger_than_the_cap_is_refused_before_anything_is_extracted(tmp_path, cli):
    """65 MiB of zeros (a 64 kB download) where a model file should be: one line from its declared size, served
    from a file:// URL; nothing is left behind."""
    size = 65 * 2**20  # the cap is 64 MiB (engine/models/fetch.py MAX_MODEL_FILE_BYTES)
    archive = upstream_zip(tmp_path / "big.zip", {"models_torch/compact_model_1_neuron0.pt": bytes(size),
                                                  "nums_filters/compact_model_1_neuron0.npy": b"x"})
    assert archive.stat().st_size < 200_000
    dest = tmp_path / "bank"
    result = cli("models", "fetch", "--dest", str(dest), "--url", archive.as_uri(), "--sha256", "any")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    line = result.stderr.splitlines()[-1]
    assert f"compact_model_1_neuron0.pt declares {size:,} bytes, more than the 64 MiB" in line
    assert not dest.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["big.zip"]


def test_model_files_declaring_more_than_the_total_cap_are_refused_in_one_line(tmp_path, cli):
    """Twenty members each declaring 60 MiB (each under the file cap, 1.2 GB in all): refused before extraction."""
    members = {f"{folder}/compact_model_1_neuron{k}.{suffix}": b"small"
               for k in range(10) for folder, suffix in (("models_torch", "pt"), ("nums_filters", "npy"))}
    archive = upstream_zip(tmp_path / "many.zip", members)
    declare_sizes(archive, 60 * 2**20)
    with zipfile.ZipFile(archive) as check:
        assert sum(m.file_size for m in check.infolist()) == 20 * 60 * 2**20
    dest = tmp_path / "bank"
    result = cli("models", "fetch", "--dest", str(dest), "--url", archive.as_uri(), "--sha256", "any")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "declare more than 1024 MiB in all" in result.stderr.splitlines()[-1]
    assert not dest.exists()


def test_a_member_whose_name_leaves_the_archive_is_refused(tmp_path, cli):
    archive = upstream_zip(tmp_path / "climb.zip", {"models_torch/compact_model_1_neuron0.pt": b"x",
                                                    "../../nums_filters/compact_model_1_neuron0.npy": b"x"})
    dest = tmp_path / "bank"
    result = cli("models", "fetch", "--dest", str(dest), "--url", archive.as_uri(), "--sha256", "any")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "leaves the archive" in result.stderr.splitlines()[-1] and not dest.exists()
