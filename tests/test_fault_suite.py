"""The fault-injection suite (bench/faults.py) as a test: real processes, real faults.

It asserts what must always hold (nothing lost, no duplicate comment, no unexpected 5xx,
every scenario's own checks); the time targets are measured and reported by
``python -m bench.faults``, not asserted here (timing belongs to benchmarks).
"""

from __future__ import annotations

import pytest

from bench.faults import run, table

pytestmark = pytest.mark.slow  # real processes, real faults, a killed worker's lease


@pytest.mark.timeout(900)
def test_fault_suite_loses_nothing_duplicates_nothing_and_never_500s():
    # A short lease: recovering the killed worker's job waits for it, and what is checked
    # here (nothing lost, nothing twice) does not depend on its length.
    results = run(lease_s=5)
    report = table(results)
    print(report)
    for result in results:
        problems = [
            note
            for note in result.notes
            if not note.startswith("scenario took") and "target" not in note
        ]
        assert not problems, report
        assert result.answered == result.tickets, report
        assert result.duplicates == 0 and result.server_errors == 0, report
