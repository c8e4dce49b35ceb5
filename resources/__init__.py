"""Resources shipped inside CompactRig: the embedded demo bank, built in code."""
