"""What the tests share, in one place: every helper a test module needs from outside itself lives in
this package, so no test module imports another (nor ``conftest``, whose fixtures pytest provides).

- ``commands``: the ``compactrig`` command line, run as a user runs it.
- ``user_input``: pressing what a user presses in the window, and answering the OS file dialogs.
- ``rig_view``: the small rig file of the window's session tests, set up as a user sets it up.
- ``sessions``: the small rig file of the session tests and what a session folder's store holds.
- ``independent_model``: the float64 reference model, written from the data README.
- ``independent_stats``: Pearson r and r2_ER computed directly, independent of the app's code.
- ``onsets``: onset markers on LSL as the presenter sends them, and a source's collected windows.
- ``peer_processes``: starting the peer stand-ins (``tests/peers/``) as processes.
- ``source_imports``: what our source files import, read from their syntax trees.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The repository root (the ``compactrig`` package)."""
