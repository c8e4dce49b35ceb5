"""The one judgement of a measured refresh against the rig file's (the window asks, the terminal warns)."""

from __future__ import annotations

from compactrig.rig.presenter.refresh import RefreshCheck


def test_more_than_two_percent_off_differs_and_says_how_long_each_image_really_is():
    assert not RefreshCheck(61.0, 60.0).differs, "1.7 % off: the usual measuring noise"
    assert RefreshCheck(61.3, 60.0).differs and RefreshCheck(58.7, 60.0).differs, "2.2 % off"
    wrong = RefreshCheck(362.6, 60.0)
    assert wrong.differs
    # 6 frames at 362.6 Hz last 16.5 ms, 16.5 % of the 100 ms that 6 frames at 60 Hz mean
    assert "362.6 Hz" in wrong.line() and "60 Hz" in wrong.line() and "17 % of the time" in wrong.line()


def test_a_paced_rig_or_an_unmeasured_refresh_never_differs():
    assert not RefreshCheck(362.6, 60.0, paced=True).differs, "pace_frames waits out each frame at 60 Hz"
    unmeasured = RefreshCheck(None, 60.0)
    assert not unmeasured.differs and "not measured" in unmeasured.line()


def test_the_record_session_json_keeps_reads_back_and_an_edited_one_is_none():
    check = RefreshCheck(362.6, 60.0)
    assert RefreshCheck.from_record(check.record()) == check
    assert check.record()["differs"] is True
    assert RefreshCheck.from_record({"measured_hz": "fast", "rig_hz": 60}) is None
    assert RefreshCheck.from_record(["not", "a", "record"]) is None
