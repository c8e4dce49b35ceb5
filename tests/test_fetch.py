"""``compactrig models fetch`` against a real HTTP server on loopback serving an upstream-like zip."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import threading
import zipfile

import numpy as np
import pytest

from conftest import run_cli

NEURONS = ["201025_neuron2", "201025_neuron3", "190923_neuron0"]


@pytest.fixture()
def served(tmp_path, shared_data):
    """A loopback HTTP server whose root holds an archive laid out like GitHub's."""
    root = tmp_path / "www"
    root.mkdir()
    with zipfile.ZipFile(root / "repo.zip", "w") as bundle:
        bundle.writestr("V4_compact_models-main/README.md", "upstream readme")
        bundle.write(shared_data / "data_V4_responses/responses_repeat_averaged/responses_190923.npy",
                     "V4_compact_models-main/data_V4_responses/responses_repeat_averaged/responses_190923.npy")
        for name in NEURONS:
            for folder, suffix in (("models_torch", ".pt"), ("nums_filters", ".npy")):
                bundle.write(shared_data / "data_compact_models" / folder / f"compact_model_{name}{suffix}",
                             f"V4_compact_models-main/data_compact_models/{folder}/compact_model_{name}{suffix}")
    (root / "not_a_zip.zip").write_text("<html>rate limited</html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_keeps_only_the_models_and_they_predict_like_the_originals(served, tmp_path, shared_data):
    dest = tmp_path / "bank"
    result = run_cli("models", "fetch", "--dest", str(dest), "--url", f"{served}/repo.zip")
    assert result.returncode == 0, result.stderr
    assert "100%" in result.stderr, "a progress bar runs to completion"
    assert sorted(p.name for p in dest.iterdir()) == ["models_torch", "nums_filters"]
    assert sorted(p.stem for p in (dest / "models_torch").iterdir()) == sorted(f"compact_model_{n}" for n in NEURONS)
    listing = run_cli("models", "list", "--bank", str(dest))
    assert [line.split()[0] for line in listing.stdout.splitlines()[1:]] == ["190923:0", "201025:2", "201025:3"]
    images = shared_data / "data_V4_responses/images/images_201025.zip"
    ours, theirs = tmp_path / "fetched.npy", tmp_path / "shared.npy"
    for bank, out in ((dest, ours), (shared_data / "data_compact_models", theirs)):
        done = run_cli("predict", "--bank", str(bank), "--images", str(images), "--out", str(out),
                       "--neurons", "201025:2")
        assert done.returncode == 0, done.stderr
    assert (np.load(ours) == np.load(theirs)).all()


def test_fetch_to_the_user_data_directory_then_use_it_as_published(served, tmp_path):
    env_home = tmp_path / "xdg"
    os.environ["XDG_DATA_HOME"] = str(env_home)
    try:
        assert run_cli("models", "fetch", "--url", f"{served}/repo.zip").returncode == 0
        assert (env_home / "compactrig" / "models" / "models_torch").is_dir()
        listing = run_cli("models", "list", "--bank", "published")
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
def test_failed_fetch_says_why_and_keeps_the_old_bank(served, tmp_path, path, fragment):
    dest = tmp_path / "bank"
    assert run_cli("models", "fetch", "--dest", str(dest), "--url", f"{served}/repo.zip").returncode == 0
    before = sorted(p.name for p in (dest / "models_torch").iterdir())
    url = f"http://127.0.0.1:{_closed_port()}/repo.zip" if path is None else f"{served}{path}"
    result = run_cli("models", "fetch", "--dest", str(dest), "--url", url)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert fragment in result.stderr.splitlines()[-1]
    assert sorted(p.name for p in (dest / "models_torch").iterdir()) == before


def test_the_window_fetches_in_a_job_and_switches_to_the_published_bank(served, tmp_path, monkeypatch, qtbot,
                                                                       window):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    tab = window.models
    with qtbot.waitSignal(tab.bank_changed, timeout=60000) as changed:
        tab.fetch(f"{served}/repo.zip")
    assert changed.args[0].neuron_ids == ["190923:0", "201025:2", "201025:3"]
    assert tab.bank_choice.currentText() == "published" and tab.table.rowCount() == 3
    assert tab.fetch_button.isEnabled()
    tab.fetch(f"{served}/not_a_zip.zip")
    qtbot.waitUntil(lambda: "not a zip archive" in window.statusBar().currentMessage(), timeout=30000)
    assert tab.table.rowCount() == 3, "a failed fetch keeps the bank"
