"""Recording sessions that lose nothing: folder, crash-safe trial store, runner, export (no Qt)."""
