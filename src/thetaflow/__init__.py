"""thetaflow: from simulated NanoAOD ntuples to the physics parameters θ of a pyhf fit.

The package holds every piece of physics and machine-learning logic of the workflow; the
Snakemake rules only call into it through the thin adapters in ``scripts/``.
"""

__version__ = "0.1.0"
