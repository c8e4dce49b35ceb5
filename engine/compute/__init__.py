"""Predictions over collections of any size, chunk by chunk, on this machine or a Dask cluster."""
