"""Supervised learning: folds, training tables, training, out-of-fold scoring, evaluation,
the b-jet regression; classifier families in models/."""
