"""The event-code table: the words each event is, read back by decode; its rig-file checks; the outputs'
one-line errors where no device is (no peer needed: these run in milliseconds)."""

from __future__ import annotations

import pytest

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.code_outputs import LabJackCodes, NidaqCodes, SerialCodes
from compactrig.plugins.event_codes import CodeTable
from compactrig.rig.presenter.parallel_port import ParallelPortCodes
from compactrig.rig.presenter.rig import RigFileError, parse_rig
from compactrig.rig.session.setup import rig_table


def test_the_default_table_is_the_issues_and_decode_reads_back_every_event():
    codes = CodeTable()
    assert (codes.word_bits, codes.trial_start, codes.trial_end, codes.image_offset, codes.abort,
            codes.fixation_break) == (16, 1, 2, 3, 4, 5)
    assert codes.encode("onset", 12) == (32768 + 12,)
    assert codes.encode("onset", 32768 + 12) == (32768 + 12,), "order numbers wrap at 32768"
    assert codes.encode("abort", 12, "fixation") == (4, 11, 32780)
    assert codes.encode("abort", 12, "a kind the table does not name") == (4, 16, 32780)
    stream = [(0.0, 1), (0.1, 32780), (0.2, 3), (0.25, 0), (0.3, 32781), (0.4, 5), (0.45, 4), (0.46, 11),
              (0.47, 32781), (0.5, 2)]
    decoded = codes.decode(stream)
    assert decoded.strays == []
    assert [(e.event, e.time, e.identity, e.reason) for e in decoded.events] == [
        ("trial_start", 0.0, None, None), ("onset", 0.1, 12, None), ("image_offset", 0.2, None, None),
        ("onset", 0.3, 13, None), ("fixation_break", 0.4, None, None), ("abort", 0.45, 13, "fixation"),
        ("trial_end", 0.5, None, None)]
    assert codes.unwrap(5, near=32770) == 32773 and codes.unwrap(5, near=65000) == 2 * 32768 + 5
    assert codes.unwrap(32767, near=40000) == 32767 and codes.unwrap(0, near=0) == 0


def test_an_8_bit_table_splits_identities_over_words_and_a_lost_word_is_named_not_shifted():
    codes = CodeTable.from_table({"word_bits": 8, "onset_first": 128, "onset_count": 128, "identity_words": 2})
    assert codes.capacity == 128 ** 2
    assert codes.encode("onset", 1000) == (128 + 104, 128 + 7), "1000 = 7 * 128 + 104, low digit first"
    whole = [(0.0, 1), (0.1, 232), (0.101, 135), (0.2, 3), (0.3, 128 + 105), (0.301, 135), (0.4, 3), (0.5, 2)]
    assert [e.identity for e in codes.decode(whole).events if e.event == "onset"] == [1000, 1001]
    lost = whole[:2] + whole[3:]  # the second word of 1000's identity never reached the recorder
    decoded = codes.decode(lost)
    assert [(s.words, s.problem) for s in decoded.strays] == [((232,), "onset identity cut short: 1 of 2 words")]
    assert [e.identity for e in decoded.events if e.event == "onset"] == [1001], "1001 is not taken for 1000"
    extra = codes.decode([(0.0, 99), (0.1, 11), (0.2, 4), (0.3, 2), (0.4, 70000)])
    assert [s.problem for s in extra.strays] == ["word 99 is not in the code table",
                                                 "abort reason code 11 without its abort word",
                                                 "abort word not followed by a reason code",
                                                 "70000 is not a 8-bit word"]
    assert [e.event for e in extra.events] == ["trial_end"]


def test_the_rig_file_table_is_checked_line_by_line_and_kept_whole_in_the_session_snapshot():
    with pytest.raises(RigFileError) as error:
        parse_rig({"markers": {"codes": {"word_bits": 8, "trial_start": 2, "trial_end": 2, "image_offset": 300,
                                         "abort": 4.0, "identity": "name", "colour": 1,
                                         "abort_reasons": {"boredom": 3}}}})
    assert error.value.problems == [
        "rig file: markers.codes: abort = 4.0: expected a whole number",
        "rig file: markers.codes: identity = 'name': expected one of 'order', 'image_index'",
        "rig file: markers.codes: unknown key colour; known: word_bits, trial_start, trial_end, image_offset, abort, "
        "fixation_break, onset_first, onset_count, identity, identity_words, abort_reasons",
        "rig file: markers.codes: abort_reasons.boredom: not an abort kind; known: fixation, stopped, "
        "dropped_frames, missing, markers, other"]
    with pytest.raises(RigFileError) as error:
        parse_rig({"markers": {"codes": {"word_bits": 8, "trial_end": 1, "image_offset": 300, "onset_first": 200,
                                         "abort_reasons": {"fixation": 0}, "identity_words": True}}})
    assert error.value.problems[0] == "rig file: markers.codes: identity_words = True: expected a whole number"
    with pytest.raises(RigFileError) as error:
        parse_rig({"markers": {"codes": {"word_bits": 8, "trial_end": 1, "image_offset": 300, "onset_first": 200,
                                         "onset_count": 50, "fixation_break": 210,
                                         "abort_reasons": {"fixation": 0}}}})
    assert error.value.problems == [
        "rig file: markers.codes: trial_end = 1 is also trial_start: every event and reason needs its own code",
        "rig file: markers.codes: image_offset = 300: expected a code 1-255 (8-bit words; 0 is the lines at rest)",
        "rig file: markers.codes: fixation_break = 210 lies in the onset range 200..249; give it a code outside it",
        "rig file: markers.codes: abort_reasons.fixation = 0: expected a code 1-255 (8-bit words; 0 is the lines "
        "at rest)"]
    with pytest.raises(RigFileError, match='"codes" names the code table'):
        parse_rig({"markers": {"outputs": ["codes"]}})
    lab = parse_rig({"markers": {"codes": {"word_bits": 8, "onset_first": 100, "onset_count": 150,
                                           "identity": "image_index", "abort_reasons": {"stopped": 20}}}})
    assert lab.event_codes.reasons["stopped"] == 20 and lab.event_codes.reasons["fixation"] == 11
    assert parse_rig(rig_table(lab)) == lab, "session.json's rig holds the whole table"
    assert rig_table(parse_rig({}))["markers"]["codes"]["onset_first"] == 32768, "the defaults are written too"


def test_image_indices_must_fit_and_the_outputs_fail_in_one_line_where_no_device_is(tmp_path):
    output = SerialCodes(port=str(tmp_path / "no-such-port"), reset_wait_s=0.0)
    output.use_codes(CodeTable.from_table({"identity": "image_index", "onset_first": 40000, "onset_count": 3}),
                     {"a": 0, "b": 2, "c": 3})
    output.check_images(["a", "b"])
    with pytest.raises(CompactRigError, match="image index 3 does not fit the 3 identities"):
        output.check_images(["a", "c"])
    with pytest.raises(CompactRigError, match=r"^serial port '.*no-such-port' could not be opened \(.*\); check that "
                                              r"the board is plugged in and \[markers.serial\] port$"):
        output.open()
    with pytest.raises(CompactRigError, match="option port is missing"):
        SerialCodes()
    with pytest.raises(CompactRigError, match="pip install nidaqmx"):
        NidaqCodes().open()
    with pytest.raises(CompactRigError, match="pip install labjack-ljm"):
        LabJackCodes().open()
    with pytest.raises(CompactRigError, match="set \\[markers.codes\\] word_bits = 8"):
        ParallelPortCodes().use_codes(CodeTable(), {})
