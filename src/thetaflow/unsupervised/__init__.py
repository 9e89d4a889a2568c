"""Unsupervised stages: the autoencoder anomaly score, its evaluation, the blind search, PCA
and clustering diagnostics."""
