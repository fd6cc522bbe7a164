"""The FastAPI service: the Pyrus webhook, search, health, readiness and metrics."""
