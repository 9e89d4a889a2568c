"""The analysis' figure style and shared figure helpers."""
