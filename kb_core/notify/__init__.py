"""Telling people what happened: messenger notifications and printed (PDF) reports.

Both services are optional: :meth:`Messenger.from_settings` and
:meth:`PrintService.from_settings` return None when they are not configured, and neither
ever makes its caller fail (a notification returns False, a report falls back to HTML).
"""

from kb_core.notify.messages import (
    digest_text,
    promotion_blocked_text,
    run_failure_text,
    title,
    weekly_report_text,
)
from kb_core.notify.messenger import KINDS, Messenger
from kb_core.notify.printing import (
    PrintError,
    PrintService,
    ReportFiles,
    reports_dir,
    write_report,
)

__all__ = [
    "KINDS",
    "Messenger",
    "PrintError",
    "PrintService",
    "ReportFiles",
    "digest_text",
    "promotion_blocked_text",
    "reports_dir",
    "run_failure_text",
    "title",
    "weekly_report_text",
    "write_report",
]
