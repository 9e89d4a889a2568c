"""Running the workflow: provenance records and batch-system checks."""
