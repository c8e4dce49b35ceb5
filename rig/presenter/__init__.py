"""Rig presentation: the PsychoPy presenter process and what configures and drives it.

Only ``compactrig.rig.presenter.window`` (run inside the child process) imports PsychoPy; nothing
here imports Qt. The rig file, the message protocol and the parent-side client are
plain Python so the GUI, the CLI and the session runner share them.
"""
