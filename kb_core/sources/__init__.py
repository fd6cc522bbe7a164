"""Source clients: each yields SourceDocument records for the pipeline."""
