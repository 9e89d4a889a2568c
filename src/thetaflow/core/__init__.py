"""Shared foundations every stage imports: errors, config reading and validation, samples,
results paths, atomic I/O, logs, progress, the restricted expression language, units. Imports no
stage."""
