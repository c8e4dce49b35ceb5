"""The compact-model engine: load banks, predict, read activations (pure PyTorch, no Qt)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("compactrig")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
