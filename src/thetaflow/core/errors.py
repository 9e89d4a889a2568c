"""The error hierarchy: every error thetaflow raises on purpose derives from ThetaflowError.

A caller (a script, Snakemake's parse step, a test) can catch ``ThetaflowError`` to tell a
problem the library diagnosed, with a message naming the file, key or sample, from a bug.
Each stage's error also keeps the built-in base it had (``ValueError`` for bad input,
``RuntimeError`` for a failed step), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class ThetaflowError(Exception):
    """Base of every error the library raises with a diagnosis in its message."""


class ConfigError(ThetaflowError, ValueError):
    """A configuration problem; the message names the file, the key and what was expected."""


class CorruptResultError(ThetaflowError, ValueError):
    """A workflow output its consumer cannot read (truncated, unreadable, or not what its rule
    writes); the message names the file and how to rebuild it."""
