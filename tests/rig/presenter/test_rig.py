"""Rig files: defaults, derived pixel sizes, and one clear message per problem."""

from __future__ import annotations

import math
import time

import pytest

from compactrig.engine.errors import CompactRigError
from compactrig.rig.presenter.rig import RigConfig, RigFileError, load_rig, parse_rig

from support.commands import run_cli


def test_init_writes_a_commented_default_that_loads(tmp_path):
    path = tmp_path / "rig.toml"
    result = run_cli("rig", "init", str(path))
    assert result.returncode == 0 and "#" in path.read_text()
    assert load_rig(path) == RigConfig()
    again = run_cli("rig", "init", str(path))
    assert again.returncode == 2 and "already exists" in again.stderr
    check = run_cli("rig", "check", str(path))
    assert check.returncode == 0 and "24.03 px/deg" in check.stdout


def test_pixels_per_degree_from_geometry():
    rig = parse_rig({"screen": {"resolution": [1920, 1080], "width_cm": 60.0, "distance_cm": 80.0},
                     "image": {"size_deg": 3.0, "position_deg": [2.0, -1.0]}})
    cm_per_degree = 2 * 80.0 * math.tan(math.radians(0.5))
    assert rig.pixels_per_degree == pytest.approx(1920 / 60.0 * cm_per_degree)
    assert rig.image_size_px == pytest.approx(3 * 1920 / 60.0 * cm_per_degree)
    assert rig.image_position_px[1] == pytest.approx(-rig.pixels_per_degree)


def test_milliseconds_must_be_whole_frames():
    rig = parse_rig({"screen": {"refresh_hz": 120.0}, "timing": {"on_ms": 100, "off_ms": 50}})
    assert (rig.frames_on, rig.frames_off) == (12, 6)
    with pytest.raises(RigFileError) as error:
        parse_rig({"screen": {"refresh_hz": 75.0}, "timing": {"on_ms": 100}})
    assert "timing.on_ms = 100 is 7.5 frames at 75 Hz" in str(error.value)


def test_every_problem_is_reported_on_its_own_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[screen]\nindex = -1\nrefresh = 60\n[image]\nsize_deg = 90.0\n[timing]\nframes_on = 0\n'
                    '[photodiode]\ncorner = "middle"\n[colours]\nx = 1\n')
    with pytest.raises(RigFileError) as error:
        load_rig(path)
    problems = error.value.problems
    assert len(problems) == 5 and all(p.startswith(str(path)) for p in problems)
    text = "\n".join(problems)
    for fragment in ("screen.index = -1", "unknown key screen.refresh", "timing.frames_on = 0",
                     "photodiode.corner = 'middle'", "unknown section [colours]"):
        assert fragment in text
    result = run_cli("rig", "check", str(path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 5


def test_image_that_does_not_fit_and_broken_toml(tmp_path):
    with pytest.raises(RigFileError, match="does not fit the 1280x720 screen"):
        parse_rig({"image": {"size_deg": 20.0, "position_deg": [20.0, 0.0]}})
    broken = tmp_path / "broken.toml"
    broken.write_text("[screen\nindex = 0")
    with pytest.raises(CompactRigError, match="not valid TOML"):
        load_rig(broken)
    with pytest.raises(CompactRigError, match="no such rig file"):
        load_rig(tmp_path / "missing.toml")


def test_source_section_configures_a_response_source():
    from compactrig.plugins.registry import make_source
    rig = parse_rig({"source": {"name": "simulated", "options": {"gain": "2.0", "seed": 4}}})
    source = make_source(rig.source_name, rig.source_options)
    assert source.settings["gain"] == "2.0" and source.settings["seed"] == 4
    assert RigConfig().source_name == "simulated"
    with pytest.raises(CompactRigError, match="has no option 'speed'"):
        make_source("simulated", {"speed": 1})
    with pytest.raises(RigFileError, match="source.name = 3"):
        parse_rig({"source": {"name": 3}})


def test_images_are_drawn_at_a_whole_multiple_of_their_pixels_and_check_warns_about_the_fixation_dot(tmp_path):
    """1920 px over 60 cm at 80 cm: 44.7 px/deg; 5 deg asks 223 px, drawn 224 (2 x 112) = 5.01 deg."""
    rig = parse_rig({"screen": {"resolution": [1920, 1080], "width_cm": 60.0, "distance_cm": 80.0},
                     "image": {"size_deg": 5.0, "position_deg": [0.0, 0.0]}})
    ppd = 1920 / 60.0 * 2 * 80.0 * math.tan(math.radians(0.5))
    assert rig.drawn_image_px() == 224 == 112 * round(5.0 * ppd / 112)
    assert rig.drawn_image_deg() == pytest.approx(224 / ppd)
    assert rig.pixel_aligned_position(224) == (0, 0) and rig.fixation_overlaps_image()
    odd = parse_rig({"screen": {"resolution": [1279, 721]}, "image": {"position_deg": [4.0, -3.0]}})
    x, y = odd.pixel_aligned_position(112)
    assert (x - 0.5).is_integer() and (y - 0.5).is_integer(), "an odd screen's centre is mid-pixel"
    assert not RigConfig().fixation_overlaps_image(), "the default image sits clear of the fixation dot"
    path = tmp_path / "rig.toml"
    path.write_text("[screen]\nresolution = [1920, 1080]\nwidth_cm = 60.0\ndistance_cm = 80.0\n"
                    "[image]\nsize_deg = 5.0\nposition_deg = [0.0, 0.0]\n")
    check = run_cli("rig", "check", str(path))
    assert check.returncode == 0 and "images drawn 224 px (2x their 112 pixels, nearest-neighbour) = 5.01 deg" \
        in check.stdout
    assert "warning: the fixation dot" in check.stderr


def test_the_drawn_size_says_why_it_is_not_size_deg():
    """A small image is never drawn below 1x its 112 pixels; a large one at the nearest multiple; the distance
    named is where that multiple subtends size_deg exactly."""
    small = parse_rig({"image": {"size_deg": 1.0}})
    per_degree = 1280 / 53.0 * 2 * 57.0 * math.tan(math.radians(0.5))
    assert small.describe_drawn_image() == (
        f"images drawn 112 px (1x their 112 pixels, nearest-neighbour) = {112 / per_degree:.2f} deg, not the 1 deg "
        f"of size_deg: 1 deg is {per_degree:.1f} px on this screen, and an image is drawn never smaller than 1x, so "
        f"that the animal sees exactly its pixels (distance_cm = {57.0 * 112 / per_degree:.1f} would make 112 px "
        "1 deg)")
    large = parse_rig({"screen": {"resolution": [1920, 1080], "width_cm": 60.0, "distance_cm": 80.0},
                       "image": {"size_deg": 6.0, "position_deg": [0.0, 0.0]}})
    per_degree = 1920 / 60.0 * 2 * 80.0 * math.tan(math.radians(0.5))
    assert round(6.0 * per_degree / 112) == 2 and "images drawn 224 px (2x" in large.describe_drawn_image()
    assert "at the whole multiple of its 112 pixels nearest size_deg" in large.describe_drawn_image()
    exact = parse_rig({"screen": {"resolution": [1920, 1080], "width_cm": 60.0,
                                  "distance_cm": large.distance_for_exact_size()},
                       "image": {"size_deg": 6.0, "position_deg": [0.0, 0.0]}})
    assert exact.drawn_image_px() == 224 and exact.drawn_image_deg() == pytest.approx(6.0)
    assert exact.describe_drawn_image().endswith("= 6.00 deg (size_deg = 6)")


def test_check_builds_the_source_gate_and_marker_outputs_as_a_session_would_without_connecting(tmp_path):
    """"Valid" means a session can start: each plugin is installed and takes its options. Nothing is
    connected: the good rig names streams nobody sends, each waited for 30 s when connecting."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[source]\nname = "replay"\n[source.options]\nresponses = "missing.npy"\n'
                   '[gate]\nname = "lsl"\n[gate.options]\nstale_after_s = 0\n'
                   '[markers]\noutputs = ["lsl", "parallel-port"]\n[markers.lsl]\nvolume = 3\n')
    result = run_cli("rig", "check", str(bad))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 4 and "Traceback" not in result.stderr, result.stderr
    for line, fragment in zip(lines, ("replay: responses file 'missing.npy' not found",
                                      "gate 'lsl': stale_after_s must be above 0",
                                      "marker output 'lsl' has no option 'volume'",
                                      "marker output 'parallel-port': compactrig.marker_outputs plugin "
                                      "'parallel-port' is not installed")):
        assert fragment in line, (fragment, line)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[source]\nname = "nope"\n')
    result = run_cli("rig", "check", str(unknown))
    assert result.returncode == 2 and "source 'nope': compactrig.response_sources plugin 'nope' is not installed" \
        in result.stderr
    good = tmp_path / "good.toml"
    good.write_text('[source]\nname = "lsl"\n[source.options]\nstream_name = "nobody-sends-this"\n'
                    'resolve_timeout_s = 30\n'
                    '[gate]\nname = "lsl"\n[gate.options]\nstream_name = "nobody-either"\nresolve_timeout_s = 30\n'
                    '[markers]\noutputs = ["lsl"]\n[markers.lsl]\nwait_for_recorder_s = 30.0\n')
    started = time.monotonic()
    result = run_cli("rig", "check", str(good))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 20, "nothing was connected"
    assert "source 'lsl', gate 'lsl', marker outputs lsl: installed, options valid (not connected)" in result.stdout
