"""One module per ``compactrig`` command, named for it; each has ``register(commands)``, which adds its
parser and sets ``run``."""
