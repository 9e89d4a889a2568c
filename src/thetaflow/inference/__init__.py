"""Statistical inference: from classifier outputs to the physics parameters θ.

The chain, one module per step: :mod:`.discriminants` (what is fitted and where its values
live), :mod:`.histograms` (fine ``hist`` templates per process and variation, and their
rebinning), :mod:`.model` (a model's regions and free parameters θ), :mod:`.workspace` (the
HistFactory model of one or several regions, built with cabinetry on pyhf),
:mod:`.fit` (maximum-likelihood fit of the pseudo-data), :mod:`.beyond` (impacts, scans,
significance, CLs limits), :mod:`.closure` (Asimov, toys, signal injection) and
:mod:`.summary` (the comparison of discriminants and the headline numbers).
:mod:`.batched_fits` fits many toys at once (a projected Newton minimiser on pyhf's JAX
likelihood, vectorised over toys); the closure's toys do not use it yet.
"""
