"""The feature registry, its computation from selected events, and the control plots of the
features."""
