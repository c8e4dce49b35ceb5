"""Response sources: what the electrode recorded for each shown image, per unit.

Built-ins (``simulated``, ``replay``, ``lsl``) register through the entry-point group
``compactrig.response_sources`` exactly as a lab's own sources do.
"""
