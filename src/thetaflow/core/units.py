"""Unit conversions shared by the stages (cross-sections in pb, luminosities in fb⁻¹)."""

PB_PER_INVERSE_FB = 1000.0  # σ[pb] × L[fb⁻¹] × 1000 = expected events
