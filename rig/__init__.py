"""The rig runtime: the PsychoPy presenter process (``presenter``), sessions (``session``: the trial store,
the runner, exports) and the ``compactrig`` command line (``cli``). None of it imports Qt."""
