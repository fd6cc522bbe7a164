"""Domain library of the Pyrus knowledge-base assistant.

Knows neither Dagster nor FastAPI: the pipeline (kb_assets), the bot (bot_api), the
evaluation harness (evals) and the CLI (kb_cli) all call into it.
"""
