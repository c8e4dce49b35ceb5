"""Small banks written to disk for tests that need neurons from more than one recording session."""

from __future__ import annotations

from pathlib import Path

from compactrig.engine.models.bank import load_bank
from compactrig.engine.models.bank_writer import write_model

TWO_SESSIONS = {"a:0": "demo:0", "a:1": "demo:2", "b:0": "demo:1"}
"""Neuron id in the written bank -> the demo model it holds: session ``a`` has two neurons, ``b`` one."""


def two_session_bank(folder: Path) -> Path:
    """The demo models written as a bank of two sessions (``TWO_SESSIONS``)."""
    demo = load_bank("demo")
    for neuron_id, source in TWO_SESSIONS.items():
        session, index = neuron_id.split(":")
        write_model(folder, session, int(index), demo.model(source), {"copied_from": source})
    return folder
