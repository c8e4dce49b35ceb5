"""The CompactRig application shell: the command line (``gui.cli``) and, later, the Qt window.

Importing this package does not import Qt; only the window modules do.
"""
