"""The embedded simulation: truth generation, the detector model and NanoAOD-like output,
pseudo-data."""
