"""Readout fitting: ridge readouts of recorded units from a bank's features (the closed loop's and the new
neurons' first step), the features themselves, and the fitted readout as a model."""
