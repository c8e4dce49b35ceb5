"""Nothing lost, nothing touched that is not its own: the commands' file handling under careless or hostile input.

Every case runs the real command line on real files: a manifest naming a file outside its set, a zip whose
member climbs out of the archive, a user's folder or file where an output goes, a session's own store as
an export target, an output folder that cannot be written. The user's files must be byte-for-byte intact
afterwards, and every refusal is one line (exit 2) that comes before the long work.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compactrig.stimuli.probes import colour_blob, dot_lattice, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.commands import run_cli
from support.user_input import click, open_tab

RIG = """[screen]
resolution = [400, 300]
width_cm = 40.0
[image]
size_deg = 3.0
[timing]
frames_on = 3
frames_off = 2
images_per_trial = 2
inter_trial_s = 0.0
"""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the SHA-256 of its bytes: what "intact" means here."""
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("compactrig: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture()
def images(tmp_path) -> Path:
    """A folder of three natural images (ids a_grating, b_dots, c_blob)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name, pixels in {"a_grating": grating(0), "b_dots": dot_lattice(), "c_blob": colour_blob((1, -1, 0))}.items():
        Image.fromarray(pixels).save(folder / f"{name}.png")
    return folder


def hostile_set(tmp_path: Path) -> tuple[Path, Path]:
    """A real stimulus set whose manifest was edited to name ``../victim.txt`` as one image's file."""
    folder = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id="old", kind="natural")], grating(90)[None]).save(folder)
    victim = tmp_path / "victim.txt"
    victim.write_text("a file of the user's, outside the set")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["images"][0]["file"] = "../victim.txt"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder, victim


@pytest.mark.parametrize("command", [
    ["stimuli", "import", "{images}"],
    ["gaudy", "--images", "{images}"],
    ["synth", "max", "--neuron", "demo:0", "--steps", "1"],
])
def test_a_save_into_a_set_whose_manifest_names_a_file_outside_it_deletes_nothing(tmp_path, images, cli, command):
    folder, victim = hostile_set(tmp_path)
    before = tree(folder)
    result = cli(*[a.format(images=images) for a in command], "--out", str(folder))
    line = one_error_line(result)
    assert "'../victim.txt' leads outside" in line and "manifest.json" in line
    assert victim.read_text() == "a file of the user's, outside the set"
    assert tree(folder) == before


def test_the_windows_save_into_a_hostile_set_deletes_nothing(tmp_path, qtbot, window, monkeypatch):
    from support.user_input import answer_folder_dialog
    folder, victim = hostile_set(tmp_path)
    tab = window.stimuli
    open_tab(qtbot, window.tabs, tab)
    assert tab.add(StimulusSet([StimulusRecord(image_id="new", kind="natural")], dot_lattice()[None]))
    answer_folder_dialog(monkeypatch, folder)
    with qtbot.waitSignal(tab.message) as said:
        click(qtbot, tab.save_button)
    assert "leads outside" in said.args[0]
    assert victim.exists() and not (folder / "new.png").exists()


def test_a_save_never_replaces_a_file_the_sets_manifest_does_not_name(tmp_path, images, cli):
    """A photo of the user's in a set's folder, named like an image being added: refused, the photo kept."""
    folder = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id="old", kind="natural")], grating(90)[None]).save(folder)
    Image.new("RGB", (640, 480), (200, 10, 10)).save(folder / "b_dots.png")
    before = tree(folder)
    line = one_error_line(cli("stimuli", "import", str(images), "--out", str(folder)))
    assert "b_dots.png: already exists and is not part of the stimulus set" in line
    assert tree(folder) == before


def test_a_save_never_removes_a_file_a_manifest_names_that_is_not_its_image(tmp_path, images, cli):
    """A manifest entry edited to name the user's notes beside the images: the next save must not remove them."""
    folder = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id="old", kind="natural")], grating(90)[None]).save(folder)
    (folder / "notes.txt").write_text("recorded on day 1")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["images"][0]["file"] = "notes.txt"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    before = tree(folder)
    line = one_error_line(cli("stimuli", "import", str(images), "--out", str(folder)))
    assert "image 'old' names file 'notes.txt'" in line
    assert tree(folder) == before


def test_out_onto_a_non_empty_folder_that_is_not_a_set_needs_force(tmp_path, images, cli):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("years of work")
    Image.fromarray(grating(30)).save(folder / "figure1.png")
    before = tree(folder)
    line = one_error_line(cli("stimuli", "import", str(images), "--out", str(folder)))
    assert "holds files and is not a stimulus set" in line and "--force" in line
    assert tree(folder) == before
    forced = cli("stimuli", "import", str(images), "--out", str(folder), "--force")
    assert forced.returncode == 0, forced.stderr
    assert StimulusSet.load(folder).ids == ["a_grating", "b_dots", "c_blob"]
    assert {k: v for k, v in tree(folder).items() if k in before} == before, "--force writes beside, never over"


def test_screen_onto_a_foreign_folder_needs_force(tmp_path, images, cli):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "recording.bin").write_bytes(b"\x00\x01" * 100)
    result = cli("screen", "--images", str(images), "--top", "1", "--out", str(folder))
    assert "is not an earlier screen's output" in one_error_line(result)
    assert tree(folder) == {"recording.bin": digest(folder / "recording.bin")}


def test_a_zip_member_that_climbs_out_of_the_archive_is_refused(tmp_path, cli):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, pixels in (("ok.png", grating(0)), ("../../escaped.png", dot_lattice())):
            data = Image.fromarray(pixels)
            path = tmp_path / "member.png"
            data.save(path)
            bundle.write(path, name)
    line = one_error_line(cli("stimuli", "import", str(archive), "--out", str(tmp_path / "set")))
    assert "member '../../escaped.png' leaves the archive" in line
    assert not (tmp_path / "set").exists()


def test_predict_never_replaces_an_existing_file_without_force(tmp_path, images, cli):
    out, table = tmp_path / "mine.npy", tmp_path / "mine.csv"
    np.save(out, np.arange(5.0))
    table.write_text("a,b\n1,2\n")
    before = (digest(out), digest(table))
    line = one_error_line(cli("predict", "--images", str(images), "--out", str(out)))
    assert "mine.npy: already exists; add --force" in line
    line = one_error_line(cli("predict", "--images", str(images), "--out", str(tmp_path / "new.npy"),
                              "--csv", str(table)))
    assert "mine.csv: already exists; add --force" in line
    assert (digest(out), digest(table)) == before and not (tmp_path / "new.npy").exists()
    forced = cli("predict", "--images", str(images), "--out", str(out), "--csv", str(table), "--force")
    assert forced.returncode == 0, forced.stderr
    assert np.load(out).shape == (3, 3) and table.read_text().startswith("neuron,a_grating,b_dots,c_blob")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "mine.csv", "mine.npy"], "no partial file left"


@pytest.mark.parametrize("command, started", [
    (["predict", "--images", "{images}", "--out", "{blocked}/p.npy"], "predicting"),
    (["synth", "max", "--neuron", "demo:0", "--steps", "1", "--out", "{blocked}/set"], "synthesizing"),
    (["stimuli", "import", "{images}", "--out", "{blocked}/set"], "reading images"),
    (["screen", "--images", "{images}", "--top", "1", "--out", "{blocked}/screened"], "predicting"),
])
def test_an_output_folder_that_cannot_be_created_is_found_before_the_work(tmp_path, images, cli, command, started):
    blocked = tmp_path / "notes.txt"  # a file where the output's folder would have to be
    blocked.write_text("not a folder")
    result = cli(*[a.format(images=images, blocked=blocked) for a in command])
    line = one_error_line(result)
    assert "notes.txt is a file, not a folder" in line
    assert started not in result.stderr, "refused before the long work started"


def test_an_output_folder_that_is_not_writable_is_found_before_the_work(tmp_path, images, cli):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        try:
            (locked / "probe").write_text("x")
        except OSError:
            pass
        else:
            pytest.skip("this user writes into read-only folders (root): no folder here is unwritable")
        result = cli("predict", "--images", str(images), "--out", str(locked / "p.npy"))
        assert "cannot write in" in one_error_line(result) and "predicting" not in result.stderr
    finally:
        locked.chmod(0o755)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A real session: 4 images, simulated source, run to the end by the command line."""
    root = tmp_path_factory.mktemp("recorded")
    stimuli = root / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(4)],
                np.stack([grating(0), grating(90), dot_lattice(), colour_blob((1, -1, 0))])).save(stimuli)
    (root / "rig.toml").write_text(RIG)
    result = run_cli("session", "run", "--stimuli", str(stimuli), "--rig", str(root / "rig.toml"),
                     "--source", "simulated", "--source-opt", "seed=3", "--out", str(root / "session"), timeout=300)
    assert result.returncode == 0, result.stderr
    return root / "session"


@pytest.fixture()
def session(recorded, tmp_path) -> Path:
    copy = tmp_path / "session"
    shutil.copytree(recorded, copy)
    return copy


@pytest.mark.needs_display
@pytest.mark.parametrize("command, target", [
    (["session", "export", "{s}", "--nwb", "{s}/trials.sqlite"], "trials.sqlite"),
    (["session", "export", "{s}", "--nwb", "{s}/trials.sqlite", "--force"], "trials.sqlite"),
    (["session", "export", "{s}", "--npz", "{s}/session.json", "--force"], "session.json"),
    (["session", "export", "{s}", "--npz", "{s}/stimuli/img0.png", "--force"], "stimuli"),
    (["session", "report", "{s}", "--png", "{s}/trials.sqlite"], "trials.sqlite"),
    (["session", "report", "{s}", "--png", "{s}/stimuli/img1.png", "--force"], "stimuli"),
])
def test_an_export_or_report_onto_the_sessions_own_files_is_refused_even_with_force(session, cli, command, target):
    pytest.importorskip("pynwb")
    before = tree(session)
    line = one_error_line(cli(*[a.format(s=session) for a in command]))
    assert "which CompactRig must not replace" in line and target in line
    assert tree(session) == before
    resumed = cli("session", "export", str(session), "--npz", str(session.parent / "check.npz"))
    assert resumed.returncode == 0, "the store still reads"
    assert np.load(session.parent / "check.npz")["responses"].shape[1:] == (4, 1)


@pytest.mark.needs_display
def test_an_export_replaces_an_existing_file_only_with_force(session, cli):
    pytest.importorskip("pynwb")
    out, nwb = session.parent / "analysis.npz", session.parent / "s.nwb"
    out.write_bytes(b"my earlier analysis")
    nwb.write_bytes(b"someone's recording")
    for flag, path in (("--npz", out), ("--nwb", nwb)):
        line = one_error_line(cli("session", "export", str(session), flag, str(path)))
        assert f"{path.name}: already exists; add --force" in line
    assert out.read_bytes() == b"my earlier analysis" and nwb.read_bytes() == b"someone's recording"
    forced = cli("session", "export", str(session), "--npz", str(out), "--nwb", str(nwb), "--force")
    assert forced.returncode == 0, forced.stderr
    assert np.load(out)["responses"].shape[1:] == (4, 1) and nwb.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    named = cli("session", "export", str(session), "--npz", str(session.parent / "no_suffix"))
    assert named.returncode == 0 and (session.parent / "no_suffix").is_file(), "exactly the file asked for"
    assert not (session.parent / "no_suffix.npz").exists()
    report = cli("session", "report", str(session))
    again = cli("session", "report", str(session))
    assert report.returncode == 0 and again.returncode == 0, "the report's own default file is written again"


@pytest.mark.needs_display
def test_no_output_writes_over_another_sessions_files_or_a_stimulus_sets_even_with_force(recorded, tmp_path, cli):
    """The outputs of one session's export and report, and predict's, aimed at another session's store and
    snapshot or at a stimulus set's manifest and PNG: each refused, with --force too, and nothing changes."""
    first, other = tmp_path / "monday", tmp_path / "tuesday"
    shutil.copytree(recorded, first)
    shutil.copytree(recorded, other)
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(grating(45)).save(images / "image0001.png")
    before, set_before = tree(other), tree(other / "stimuli")
    for command in (["session", "export", str(first), "--npz", str(other / "trials.sqlite"), "--force"],
                    ["session", "export", str(first), "--npz", str(other / "stimuli" / "manifest.json"), "--force"],
                    ["session", "report", str(first), "--png", str(other / "session.json"), "--force"],
                    ["predict", "--images", str(images), "--out", str(tmp_path / "p.npy"),
                     "--csv", str(other / "trials.sqlite"), "--force"]):
        assert "which CompactRig must not replace" in one_error_line(cli(*command)), command
    stimulus_set = tmp_path / "set"
    shutil.copytree(recorded / "stimuli", stimulus_set)
    for target in (stimulus_set / "manifest.json", stimulus_set / "img0.png"):
        line = one_error_line(cli("session", "export", str(first), "--npz", str(target), "--force"))
        assert "which CompactRig must not replace" in line
    assert tree(other) == before and tree(stimulus_set) == set_before
    assert cli("session", "export", str(other), "--npz", str(tmp_path / "still.npz")).returncode == 0


@pytest.mark.needs_display
def test_no_stimulus_set_output_goes_into_a_session_folder(session, tmp_path, cli):
    """``stimuli import`` into a session's ``stimuli/`` (its record of what was shown) or ``gaudy`` into the
    session folder itself: refused, with --force too; the session is as it was."""
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(grating(45)).save(images / "image0009.png")
    before = tree(session)
    for command in (["stimuli", "import", str(images), "--out", str(session / "stimuli")],
                    ["gaudy", "--images", str(images), "--out", str(session), "--force"]):
        assert f"is inside the session {session}" in one_error_line(cli(*command)), command
    assert tree(session) == before


def test_a_session_is_not_started_in_a_users_folder_or_a_stimulus_set(tmp_path, cli):
    """A non-empty folder that is not a session (a user's notes, a stimulus set) is refused as a session's --out
    before anything is written there: not even the session lock's files are left behind."""
    stimuli = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(2)],
                np.stack([grating(0), grating(90)])).save(stimuli)
    (tmp_path / "rig.toml").write_text(RIG)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("mine")
    for out in (notes, stimuli):
        before = tree(out)
        result = cli("session", "run", "--stimuli", str(stimuli), "--rig", str(tmp_path / "rig.toml"),
                     "--source", "simulated", "--out", str(out))
        assert "holds files that are not a session's" in one_error_line(result)
        assert tree(out) == before and not (out / "lock").exists() and not (out / "lock.holder").exists()


@pytest.mark.needs_display
@pytest.mark.parametrize("edit, fragment", [
    (lambda snapshot: snapshot.update(plan="bogus"), "'plan' is missing or not of its kind"),
    (lambda snapshot: snapshot.pop("stimulus_ids"), "'stimulus_ids' is missing or not of its kind"),
    (lambda snapshot: snapshot.update(stimulus_ids=5), "'stimulus_ids' is missing or not of its kind"),
    (lambda snapshot: snapshot["plan"].update(repeats="2"), "the plan's 'repeats' is '2'"),
    (lambda snapshot: snapshot["plan"].update(colour="red"), "the plan's 'colour' is not a plan field"),
])
def test_an_edited_session_json_is_one_line_naming_the_part(session, tmp_path, cli, edit, fragment):
    snapshot = json.loads((session / "session.json").read_text())
    edit(snapshot)
    (session / "session.json").write_text(json.dumps(snapshot))
    for command in (["session", "export", str(session), "--npz", str(tmp_path / "x.npz")],
                    ["session", "resume", str(session)]):
        assert fragment in one_error_line(cli(*command)), command
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.needs_display
def test_a_session_whose_stimuli_lead_outside_it_is_refused(session, tmp_path, cli):
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(session / "stimuli"), elsewhere)
    try:
        os.symlink(elsewhere, session / "stimuli", target_is_directory=True)
    except OSError:
        pytest.skip("this system does not let this user make symbolic links")
    line = one_error_line(cli("session", "export", str(session), "--nwb", str(tmp_path / "s.nwb")))
    assert "'stimuli' leads outside" in line and not (tmp_path / "s.nwb").exists()


def test_a_stimulus_image_that_links_outside_its_set_is_refused_before_a_session_starts(tmp_path, cli):
    """The pixels a session shows come from inside the set: a PNG replaced by a link to a file elsewhere is refused."""
    stimuli = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(2)],
                np.stack([grating(0), grating(90)])).save(stimuli)
    elsewhere = tmp_path / "elsewhere.png"
    Image.fromarray(dot_lattice()).save(elsewhere)
    (stimuli / "img1.png").unlink()
    try:
        os.symlink(elsewhere, stimuli / "img1.png")
    except OSError:
        pytest.skip("this system does not let this user make symbolic links")
    (tmp_path / "rig.toml").write_text(RIG)
    result = cli("session", "run", "--stimuli", str(stimuli), "--rig", str(tmp_path / "rig.toml"),
                 "--source", "simulated", "--out", str(tmp_path / "session"))
    assert "'img1.png' leads outside" in one_error_line(result)
    assert not (tmp_path / "session").exists()


@pytest.fixture()
def presentable(tmp_path) -> tuple[Path, Path]:
    """A stimulus set of two images and a small rig file: what ``present`` needs."""
    stimuli = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(2)],
                np.stack([grating(0), dot_lattice()])).save(stimuli)
    (tmp_path / "rig.toml").write_text(RIG)
    return stimuli, tmp_path / "rig.toml"


def test_present_never_replaces_an_existing_log_or_a_file_of_the_set(tmp_path, presentable, cli):
    stimuli, rig = presentable
    log = tmp_path / "log.csv"
    log.write_text("order,notes\n0,yesterday's recording\n")
    before, kept = tree(stimuli), digest(log)
    line = one_error_line(cli("present", "--stimuli", str(stimuli), "--rig", str(rig), "--log", str(log)))
    assert f"--log {log}: already exists; add --force" in line
    inside = one_error_line(cli("present", "--stimuli", str(stimuli), "--rig", str(rig), "--log",
                                str(stimuli / "manifest.json"), "--force"))
    assert "which CompactRig must not replace" in inside
    assert digest(log) == kept and tree(stimuli) == before


@pytest.mark.needs_display
def test_present_replaces_a_log_with_force_only_once_a_run_has_logged(tmp_path, presentable, cli):
    """--force: a run whose presenter cannot start (a screen the display lacks) keeps the old log whole; a run that
    shows the images replaces it, renamed into place, with one row per onset and nothing left beside it."""
    stimuli, rig = presentable
    log = tmp_path / "log.csv"
    log.write_text("order,notes\n0,yesterday's recording\n")
    kept = digest(log)
    absent = tmp_path / "absent.toml"
    absent.write_text(RIG.replace("[screen]\n", "[screen]\nindex = 7\n"))
    failed = cli("present", "--stimuli", str(stimuli), "--rig", str(absent), "--log", str(log), "--force")
    assert "screen.index = 7" in one_error_line(failed)
    assert digest(log) == kept, "a run that logged nothing leaves the old log as it was"
    shown = cli("present", "--stimuli", str(stimuli), "--rig", str(rig), "--log", str(log), "--force")
    assert shown.returncode == 0, shown.stderr
    with open(log) as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["order"], r["image_id"]) for r in rows] == [("0", "img0"), ("1", "img1")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["absent.toml", "log.csv", "rig.toml", "set"]


def test_present_captures_into_a_foreign_folder_only_with_force_and_never_over_a_file(tmp_path, presentable, cli):
    stimuli, rig = presentable
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "notes.txt").write_text("calibration photos")
    before = tree(frames)
    line = one_error_line(cli("present", "--stimuli", str(stimuli), "--rig", str(rig), "--capture", str(frames)))
    assert "holds files and is not an earlier capture" in line and "--force" in line
    Image.fromarray(grating(45)).save(frames / "00001.png")  # the user's photo, named like a frame
    before = tree(frames)
    forced = one_error_line(cli("present", "--stimuli", str(stimuli), "--rig", str(rig), "--capture", str(frames),
                                "--force"))
    assert "00001.png is there" in forced
    assert tree(frames) == before


@pytest.mark.needs_display
def test_present_captures_beside_a_users_files_with_force_and_again_into_an_earlier_capture(tmp_path, presentable,
                                                                                              cli):
    stimuli, rig = presentable
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "notes.txt").write_text("calibration photos")
    forced = cli("present", "--stimuli", str(stimuli), "--rig", str(rig), "--capture", str(frames), "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in frames.iterdir()) == ["00000.png", "00001.png", "notes.txt"]
    assert (frames / "notes.txt").read_text() == "calibration photos"
    (frames / "notes.txt").unlink()
    again = cli("present", "--stimuli", str(stimuli), "--rig", str(rig), "--capture", str(frames))
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in frames.iterdir()) == ["00000.png", "00001.png"]


@pytest.fixture()
def recording(tmp_path) -> list[str]:
    """``neurons fit``'s inputs for one unit: three images (image0001..3) and their responses; the fit itself stops
    at once (a compact model needs 50 images), which is how a test sees that the output checks let it start."""
    folder = tmp_path / "recorded"
    folder.mkdir()
    for k, pixels in enumerate((grating(0), dot_lattice(), colour_blob((1, -1, 0)))):
        Image.fromarray(pixels).save(folder / f"image{k + 1:04d}.png")
    np.save(tmp_path / "responses.npy", np.array([[3.0, 1.0, 2.0]]))
    return ["neurons", "fit", "--bank", "demo", "--images", str(folder), "--responses",
            str(tmp_path / "responses.npy"), "--session", "today"]


def test_neurons_fit_onto_a_foreign_folder_needs_force_and_never_replaces_a_model_it_did_not_write(tmp_path, cli,
                                                                                                 recording):
    from compactrig.engine.models.bank import load_bank
    from compactrig.engine.models.bank_writer import write_model
    users = tmp_path / "my_models"
    (users / "models_torch").mkdir(parents=True)
    (users / "models_torch" / "compact_model_today_neuron0.pt").write_bytes(b"a model of the user's")
    before = tree(users)
    line = one_error_line(cli(*recording, "--out", str(users)))
    assert "holds files and is not a bank written by `compactrig neurons fit`" in line and "--force" in line
    forced = one_error_line(cli(*recording, "--out", str(users), "--force"))
    assert "compact_model_today_neuron0.pt exists and was not written by `compactrig neurons fit`" in forced
    assert tree(users) == before
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    beside = one_error_line(cli(*recording, "--out", str(notes), "--force"))
    assert "needs 50 at the very least" in beside, "--force lets the fit start beside the user's files"
    earlier = tmp_path / "earlier"
    write_model(earlier, "today", 0, load_bank().model("demo:2"), {"made_by": "compactrig neurons fit"})
    again = one_error_line(cli(*recording, "--out", str(earlier)))
    assert "needs 50 at the very least" in again, "a bank neurons fit wrote is written again without --force"
