"""Files in and out: the one image decoder, atomic and checked outputs, paths that stay inside their
folder, the crash-safe prediction store, and names in natural order."""
