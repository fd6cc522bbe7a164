"""The Dagster code location: thin assets over kb_core."""
