"""Stimulus images: probes, synthesis and stimulus sets (pure Python: no Qt, no PsychoPy)."""
