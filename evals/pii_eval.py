"""Precision and recall of the PII scrubber on the labelled Russian set.

The set (evals/pii/ru_pii_sentences.txt) marks personal data inline as [[TYPE:value]];
markers are stripped to get the text and the gold spans. A gold span counts as found
when findings cover at least 80 % of its characters (the scrubber may split a full name
into two findings; either way the name is gone) — `recall` — and as found with the right
type when a covering finding has the same type — `type_recall`. A finding is a true
positive when at least half of it lies inside gold spans; otherwise it is a false
positive (text scrubbed that should have stayed). Values never appear in the report.

    .venv/bin/python -m evals.pii_eval [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from kb_core.pii.scrubber import Finding, Scrubber

SETS_DIR = Path(__file__).resolve().parent / "pii"
DEFAULT_SET = SETS_DIR / "ru_pii_sentences.txt"
# The parts `kb pii eval` reports: the original (mostly edited) sentences, informal
# messages as customers write them, and hard negatives (nothing to find).
PARTS = {
    "formal": DEFAULT_SET,
    "informal": SETS_DIR / "ru_pii_informal.txt",
    "negatives": SETS_DIR / "ru_pii_negatives.txt",
}
TYPES = ("PERSON", "PHONE", "EMAIL", "INN", "SNILS", "PASSPORT", "CARD", "ACCOUNT", "IBAN")
_MARKER = re.compile(r"\[\[(?P<type>[A-Z]+):(?P<value>.+?)\]\]")


@dataclass(frozen=True)
class Span:
    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Sample:
    text: str
    spans: tuple[Span, ...]


def parse_line(line: str) -> Sample:
    text_parts: list[str] = []
    spans: list[Span] = []
    cursor = 0
    length = 0
    for match in _MARKER.finditer(line):
        before = line[cursor : match.start()]
        text_parts.append(before)
        length += len(before)
        value = match["value"]
        if match["type"] not in TYPES:
            raise ValueError(f"unknown PII type {match['type']!r}")
        spans.append(Span(match["type"], length, length + len(value)))
        text_parts.append(value)
        length += len(value)
        cursor = match.end()
    text_parts.append(line[cursor:])
    return Sample("".join(text_parts), tuple(spans))


def load(path: Path = DEFAULT_SET) -> list[Sample]:
    """One sample per line; a literal ``\\n`` inside a line is a line break (a message
    with its signature on the next line)."""
    samples = []
    for line in path.read_text("utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            samples.append(parse_line(line.rstrip("\n").replace("\\n", "\n")))
    return samples


def _covered(span: Span, findings: list[Finding], same_type: bool) -> bool:
    covered = 0
    for f in findings:
        if same_type and f.kind != span.kind:
            continue
        covered += max(0, min(span.end, f.end) - max(span.start, f.start))
    return covered >= 0.8 * (span.end - span.start)


def _inside_gold(finding: Finding, spans: tuple[Span, ...]) -> bool:
    inside = sum(max(0, min(s.end, finding.end) - max(s.start, finding.start)) for s in spans)
    return inside >= 0.5 * (finding.end - finding.start)


def evaluate(scrubber: Scrubber, samples: list[Sample]) -> dict[str, object]:
    gold: dict[str, int] = defaultdict(int)
    found: dict[str, int] = defaultdict(int)
    typed: dict[str, int] = defaultdict(int)
    predicted: dict[str, int] = defaultdict(int)
    correct: dict[str, int] = defaultdict(int)
    started = time.perf_counter()
    for sample in samples:
        findings = scrubber.scan(sample.text)
        for span in sample.spans:
            gold[span.kind] += 1
            found[span.kind] += _covered(span, findings, same_type=False)
            typed[span.kind] += _covered(span, findings, same_type=True)
        for finding in findings:
            predicted[finding.kind] += 1
            correct[finding.kind] += _inside_gold(finding, sample.spans)
    seconds = time.perf_counter() - started
    per_type = {
        kind: {
            "gold": gold[kind],
            "recall": round(found[kind] / gold[kind], 4) if gold[kind] else None,
            "type_recall": round(typed[kind] / gold[kind], 4) if gold[kind] else None,
            "predicted": predicted[kind],
            "precision": round(correct[kind] / predicted[kind], 4) if predicted[kind] else None,
        }
        for kind in sorted(set(gold) | set(predicted))
    }
    all_predicted = sum(predicted.values())
    return {
        "samples": len(samples),
        "gold_spans": sum(gold.values()),
        "recall": round(sum(found.values()) / max(1, sum(gold.values())), 4),
        "precision": round(sum(correct.values()) / max(1, all_predicted), 4),
        "false_positives": all_predicted - sum(correct.values()),
        "per_type": per_type,
        "seconds": round(seconds, 2),
    }


def evaluate_parts(scrubber: Scrubber) -> dict[str, object]:
    """The whole labelled set, and each part on its own."""
    parts = {name: load(path) for name, path in PARTS.items()}
    report = evaluate(scrubber, [s for samples in parts.values() for s in samples])
    report["parts"] = {name: evaluate(scrubber, samples) for name, samples in parts.items()}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="PII scrubber precision/recall")
    parser.add_argument("--set", type=Path, default=None, help="one file (default: all parts)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from kb_core.pii import scrubber_from_settings
    from kb_core.settings import get_settings

    scrubber = scrubber_from_settings(get_settings())
    report = evaluate(scrubber, load(args.set)) if args.set else evaluate_parts(scrubber)
    if args.json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
        return
    print(f"samples {report['samples']}, gold spans {report['gold_spans']}")
    print(f"{'type':10} {'gold':>5} {'recall':>7} {'typed':>7} {'pred':>5} {'precision':>9}")
    for kind, row in report["per_type"].items():  # type: ignore[union-attr]
        print(
            f"{kind:10} {row['gold']:>5} {row['recall'] or '-':>7} {row['type_recall'] or '-':>7} "
            f"{row['predicted']:>5} {row['precision'] or '-':>9}"
        )
    print(f"overall recall {report['recall']}, precision {report['precision']}")


if __name__ == "__main__":
    main()
