"""Onsets matched to recorded event-code words by identity: what a lost, repeated or foreign word does.

Words are written here as the README's default table says (trial start 1, abort 4, onset 32768 + order),
not through the encoder, so the matcher is checked against the table a lab wires, not against itself.
"""

from __future__ import annotations

import pytest

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.event_codes import CodeTable
from compactrig.plugins.registry import check_rig_plugins
from compactrig.plugins.sources.onset_words import OnsetWords
from compactrig.rig.presenter.rig import parse_rig

RATE = 30000


def test_each_onset_gets_its_own_word_whatever_the_lag_and_a_lost_one_is_not_replaced():
    words = OnsetWords(CodeTable(), group_gap=150)
    # presentation k shown at 9000 k samples; its word recorded 40-70 ms later; presentation 2's word lost
    recorded = {0: 1200, 1: 9000 + 2100, 3: 27000 + 1500}
    for order, sample in recorded.items():
        words.add(sample - 30, 1)  # a trial start just before
        words.add(sample, 32768 + order)
    words.decode_until(30000)
    assert [words.claim(order, 9000 * order, 0.5 * RATE) for order in (0, 1, 3)] == [1200, 11100, 28500]
    assert words.claim(2, 18000, 0.5 * RATE) is None and words.past_hope(18000, 0.5 * RATE) is False
    words.decode_until(18000 + 0.5 * RATE + 1000)
    assert words.past_hope(18000, 0.5 * RATE), "nothing more can come for it: its presentation is missing"
    assert words.take_problems() == []


def test_a_group_is_never_decoded_cut_apart():
    words = OnsetWords(CodeTable(), group_gap=150)
    words.add(1000, 4)  # abort, its reason (fixation), the aborted presentation's identity
    words.add(1010, 11)
    words.add(1020, 32768 + 7)
    words.decode_until(1000 + 150 + 15)  # the cut falls inside the group: all of it waits
    words.decode_until(5000)
    assert words.take_problems() == [] and words.claim(7, 1000, 100) is None, "an abort's identity is no onset"


def test_repeated_and_foreign_words_are_named_and_claimed_by_no_other():
    words = OnsetWords(CodeTable(), group_gap=150)
    words.add(3000, 32768 + 5)
    words.add(3060, 32768 + 5)  # the strobe bounced: the same word 2 ms later
    words.add(6000, 32768 + 9)  # no presentation 9 was shown
    words.add(7000, 12345)  # not in the table
    words.decode_until(20000)
    assert words.claim(5, 2500, 15000) == 3000
    assert words.claim(5, 2500, 15000) is None, "the repeat is taken by nobody"
    problems = words.take_problems()
    assert any("repeats the one matched at 3000" in p for p in problems)
    assert any("word 12345 is not in the code table" in p for p in problems)
    extras = words.extras(before=10000)
    assert len(extras) == 1 and "identity 9 at 6000" in extras[0]


def test_an_aborted_presentations_word_is_not_an_extra():
    words = OnsetWords(CodeTable(), group_gap=150)
    words.forgive(3, near=9000, tolerance=15000)  # aborted before its word was decoded
    words.add(9500, 32768 + 3)
    words.decode_until(30000)
    assert words.extras(before=30000) == []


def test_matching_codes_needs_an_output_that_sends_them():
    rig = parse_rig({"source": {"name": "openephys", "options": {"code_strobe_line": 16}}})
    with pytest.raises(CompactRigError, match="no marker output sends codes: add serial"):
        check_rig_plugins(rig)
    wide = parse_rig({"source": {"name": "openephys", "options": {"code_strobe_line": 3}},
                      "markers": {"outputs": ["serial"], "serial": {"port": "COM3"}}})
    with pytest.raises(CompactRigError, match="leave out code_strobe_line 3"):
        check_rig_plugins(wide)
