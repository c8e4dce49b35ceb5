"""One exception type for everything a user can get wrong.

Every message is a single line that names the file, neuron or option at fault and
says how to fix it; the command line prints it without a traceback and exits 2,
and the GUI shows it in the window. Any other exception is a defect: ``compactrig.engine.crash_log``
logs its traceback and gives the user one line instead.
"""


class CompactRigError(Exception):
    """A problem with the user's input (file, folder, neuron id, option)."""
