"""Plugins: response sources, marker outputs and gates, registered by entry point."""
