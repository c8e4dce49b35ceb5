"""The CompactRig window (PyQt6 + pyqtgraph): views over engine/, stimuli/ and the rig runtime, no numerics."""
