"""The FastAPI service: search API and health today; the Pyrus webhook joins it next."""
