"""Categorisation quality on held-out sample tickets: accuracy and macro-F1.

The sample helpdesk tickets are labelled by the agents' category field. The sample
knowledge base is indexed (tickets included) and every ticket is classified by its
subject and description, scrubbed as the bot scrubs them, with its own fold of the
tickets left out of the neighbours (stratified k-fold cross-validation: each ticket is
held out exactly once). Reported per method: the nearest-neighbour vote with keyword
tie-breaks (what the bot uses without an LLM), the vote alone, the keyword rules alone,
and the category-name lemma overlap used before.

    python -m evals.categorization [--folds 5] [--k 7] [--json]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kb_core.categorize.classifier import classify, keyword_hits, ticket_neighbours
from kb_core.categorize.taxonomy import Taxonomy
from kb_core.generation.extractive import categorize as name_overlap
from kb_core.settings import PROJECT_ROOT

TICKET_FILES = sorted((PROJECT_ROOT / "samples" / "pyrus" / "tickets").glob("part-?.json"))


def accuracy_and_macro_f1(
    gold: Sequence[str], predicted: Sequence[str]
) -> tuple[float, float, dict[str, dict[str, float]]]:
    """Accuracy, macro-averaged F1 over the gold labels, and per-label P/R/F1.

    Written out rather than imported: the formulas are three lines and the alternative
    (scikit-learn) is a large dependency for them.
    """
    labels = sorted(set(gold))
    per_label: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == label)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if p == label != g)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label != p)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    correct = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p)
    accuracy = correct / len(gold) if gold else 0.0
    macro = sum(v["f1"] for v in per_label.values()) / len(labels) if labels else 0.0
    return accuracy, macro, per_label


def stratified_folds(labelled: Sequence[tuple[str, str]], folds: int) -> dict[str, int]:
    """Ticket id → fold, every category spread evenly over the folds (deterministic)."""
    by_category: dict[str, list[str]] = defaultdict(list)
    for ticket_id, category in sorted(labelled):
        by_category[category].append(ticket_id)
    assignment: dict[str, int] = {}
    offset = 0
    for category in sorted(by_category):
        for i, ticket_id in enumerate(by_category[category]):
            assignment[ticket_id] = (i + offset) % folds
        offset += len(by_category[category])
    return assignment


def sample_tickets(files: Sequence[Path] = TICKET_FILES) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for path in files:
        tasks.extend(json.loads(path.read_text(encoding="utf-8")))
    return tasks


def evaluate(folds: int = 5, k: int = 7, scrub: bool = True) -> dict[str, Any]:
    from evals.sample_kb import sample_index
    from kb_core.bot.query import ticket_question
    from kb_core.categorize.configured import taxonomy_from_settings
    from kb_core.index.versions import active_version
    from kb_core.pii.configured import config_from_settings
    from kb_core.pii.scrubber import Scrubber
    from kb_core.settings import get_settings
    from kb_core.sources import configured
    from kb_core.sources.pyrus_tasks import field_text

    settings = get_settings()
    taxonomy: Taxonomy = taxonomy_from_settings(settings)
    fields = configured.ticket_builder(settings).fields
    scrubber = Scrubber(config_from_settings(settings)) if scrub else None
    labelled = []
    for task in sample_tickets():
        category = taxonomy.canonical(field_text(task, fields.category))
        if category:
            labelled.append((str(task["id"]), category, ticket_question(task, fields)))
    fold_of = stratified_folds([(t, c) for t, c, _ in labelled], folds)
    members: dict[int, list[str]] = defaultdict(list)
    for ticket_id, fold in fold_of.items():
        members[fold].append(ticket_id)
    methods = ("knn+keywords", "knn", "keywords", "category_name_overlap")
    predictions: dict[str, list[str]] = {m: [] for m in methods}
    gold: list[str] = []
    confidences: list[tuple[float, bool]] = []
    with sample_index(scrub=scrub, name="categorization") as (conn, embedder):
        version = active_version(conn)
        for ticket_id, category, question in tqdm(labelled, desc="classify", unit="ticket"):
            text = scrubber.scrub(question) if scrubber else question
            neighbours = ticket_neighbours(
                conn,
                embedder.embed_query(text),
                model_id=embedder.model_id,
                dimension=embedder.dimension,
                version=version,
                k=k,
                exclude=members[fold_of[ticket_id]],
            )
            keywords = keyword_hits(text, taxonomy)
            full = classify(neighbours, keywords, taxonomy)
            predictions["knn+keywords"].append(full.category)
            predictions["knn"].append(classify(neighbours, Counter(), taxonomy).category)
            predictions["keywords"].append(classify([], keywords, taxonomy).category)
            predictions["category_name_overlap"].append(
                name_overlap(text, [], taxonomy.names, taxonomy.fallback)
            )
            gold.append(category)
            confidences.append((full.confidence, full.category == category))
    results: dict[str, Any] = {"tickets": len(gold), "folds": folds, "k": k, "methods": {}}
    for method in methods:
        accuracy, macro_f1, per_label = accuracy_and_macro_f1(gold, predictions[method])
        results["methods"][method] = {
            "accuracy": round(accuracy, 4),
            "macro_f1": round(macro_f1, 4),
            "per_category_f1": {label: round(v["f1"], 4) for label, v in per_label.items()},
        }
    confident = [ok for c, ok in confidences if c >= 0.5]
    results["confidence_at_least_0.5"] = {
        "share": round(len(confident) / max(len(confidences), 1), 4),
        "accuracy": round(sum(confident) / max(len(confident), 1), 4),
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--k", type=int, default=7)
    parser.add_argument("--no-scrub", action="store_true", help="classify unscrubbed text")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = evaluate(args.folds, args.k, scrub=not args.no_scrub)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    print(f"{results['tickets']} labelled sample tickets, {results['folds']}-fold, k={args.k}")
    print(f"{'method':<24} {'accuracy':>9} {'macro-F1':>9}")
    for method, m in results["methods"].items():
        print(f"{method:<24} {m['accuracy']:>9.4f} {m['macro_f1']:>9.4f}")
    c = results["confidence_at_least_0.5"]
    print(f"confidence >= 0.5: {c['share']:.0%} of tickets, accuracy {c['accuracy']:.4f}")


if __name__ == "__main__":
    main()
