"""Local fakes of the external services (Confluence, Pyrus), for tests and the demo.

They implement the real API shapes — auth, paging, filters, errors, rate limits — over
real HTTP, seeded from the sample data in ``samples/``; admin endpoints under
``/_admin`` let a test or the demo change data, inject faults and inspect what was sent.
"""
