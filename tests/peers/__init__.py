"""Stand-ins for the systems CompactRig talks to, each run as its own process by the tests.

They are written from the peers' own code and documentation (cited in each file), import
nothing from CompactRig, and log what they really did so tests compare against the peer's
truth, not against CompactRig's reading of it.
"""
