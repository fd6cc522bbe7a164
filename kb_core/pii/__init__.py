"""Personal data: detection and scrubbing of Russian PII, offline (presidio + natasha)."""

from kb_core.pii.configured import scrubber_from_settings
from kb_core.pii.scrubber import Finding, PiiConfig, Scrubber, placeholder

__all__ = ["Finding", "PiiConfig", "Scrubber", "placeholder", "scrubber_from_settings"]
