"""The Pyrus bot: webhooks, the durable job queue, and answering a ticket."""
