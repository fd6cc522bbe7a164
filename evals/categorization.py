"""Categorisation quality on held-out sample tickets: accuracy and macro-F1.

The sample helpdesk tickets are labelled by the agents' category field. The sample
knowledge base is indexed (tickets included) and every ticket is classified by its
subject and description, scrubbed as the bot scrubs them, with its own fold of the
tickets left out of the neighbours (stratified k-fold cross-validation: each ticket is
held out exactly once). Reported per method: the nearest-neighbour vote with keyword
tie-breaks (what the bot uses without an LLM), the vote alone, the keyword rules alone,
and the category-name lemma overlap used before.

Then a **time-ordered split**, as the classifier meets tickets in production: the older
``--train-share`` of the tickets (by creation time) are the labelled examples, the newer
ones are classified in arrival order. Two variants on the same split:

- *frozen*: only the older tickets' categories vote (nothing learnt after the split);
- *learning from agents*: each newer ticket, once classified, gets the category the agent
  set on it and joins the examples for the tickets after it (what storing agents'
  categories as labelled examples gives the bot).

Reported: accuracy, macro-F1, a confusion table (gold rows, predicted columns) and the
share of tickets at or above the confidence threshold with its accuracy. Nothing here
is tuned on the sample: k, the tie margin and the threshold are the bot's settings.

    python -m evals.categorization [--folds 5] [--k 7] [--train-share 0.6] [--json]
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
from kb_core.settings import PROJECT_ROOT, Settings

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


CONFIDENCE_THRESHOLD = 0.5


def confusion(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, dict[str, int]]:
    """gold → predicted → count, every gold label present (predicted ones only if seen)."""
    table: dict[str, dict[str, int]] = {label: {} for label in sorted(set(gold))}
    for g, p in zip(gold, predicted, strict=True):
        table[g][p] = table[g].get(p, 0) + 1
    return table


def time_split(
    tickets: Sequence[tuple[str, str, str, str]], train_share: float
) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str, str, str]]]:
    """(older, newer) of (created, id, category, text) tuples, by creation time."""
    if not 0 < train_share < 1:
        raise ValueError(f"train share must be between 0 and 1, not {train_share}")
    ordered = sorted(tickets)
    cut = max(1, min(len(ordered) - 1, round(len(ordered) * train_share)))
    return ordered[:cut], ordered[cut:]


def _scores(
    gold: Sequence[str], predicted: Sequence[str], confidences: Sequence[float]
) -> dict[str, Any]:
    accuracy, macro_f1, _ = accuracy_and_macro_f1(gold, predicted)
    confident = [
        g == p
        for g, p, c in zip(gold, predicted, confidences, strict=True)
        if c >= CONFIDENCE_THRESHOLD
    ]
    return {
        "accuracy": round(accuracy, 4),
        "macro_f1": round(macro_f1, 4),
        "confident_share": round(len(confident) / max(len(gold), 1), 4),
        "confident_accuracy": round(sum(confident) / max(len(confident), 1), 4),
        "confusion": confusion(gold, predicted),
    }


def evaluate_time_split(
    conn: Any,
    embedder: Any,
    tickets: Sequence[tuple[str, str, str, str]],
    taxonomy: Taxonomy,
    *,
    k: int,
    train_share: float,
) -> dict[str, Any]:
    """Frozen vs learning-from-agents on the time-ordered split (module docstring)."""
    from kb_core.categorize.examples import example_neighbours, merge, remember
    from kb_core.index.versions import active_version

    version = active_version(conn)
    conn.execute("DELETE FROM category_examples")
    older, newer = time_split(tickets, train_share)
    newer_ids = [ticket_id for _, ticket_id, _, _ in newer]
    gold = [category for _, _, category, _ in newer]
    variants: dict[str, tuple[list[str], list[float]]] = {
        "frozen": ([], []),
        "learning_from_agents": ([], []),
        "keywords_only": ([], []),
    }
    for _, ticket_id, category, text in tqdm(newer, desc="time split", unit="ticket"):
        vector = embedder.embed_query(text)
        keywords = keyword_hits(text, taxonomy)
        indexed = ticket_neighbours(
            conn,
            vector,
            model_id=embedder.model_id,
            dimension=embedder.dimension,
            version=version,
            k=k,
            exclude=newer_ids,
        )
        frozen = classify(indexed, keywords, taxonomy)
        # The product's path: agents' categories stored as examples vote beside the index.
        examples = example_neighbours(conn, vector, model_id=embedder.model_id, k=k)
        learning = classify(merge(indexed, examples, k), keywords, taxonomy)
        for variant, prediction in (("frozen", frozen), ("learning_from_agents", learning)):
            variants[variant][0].append(prediction.category)
            variants[variant][1].append(prediction.confidence)
        # Classified; now the agent sets the category, and it becomes an example.
        remember(conn, int(ticket_id), category, vector, embedder.model_id)
        only_keywords = classify([], keywords, taxonomy)
        variants["keywords_only"][0].append(only_keywords.category)
        variants["keywords_only"][1].append(only_keywords.confidence)
    return {
        "train": len(older),
        "test": len(newer),
        "split_at": newer[0][0] if newer else None,
        "threshold": CONFIDENCE_THRESHOLD,
        "variants": {name: _scores(gold, p, c) for name, (p, c) in variants.items()},
    }


def evaluate(
    settings: Settings,
    folds: int = 5,
    k: int = 7,
    scrub: bool = True,
    train_share: float = 0.6,
    kfold: bool = True,
) -> dict[str, Any]:
    from evals.sample_kb import sample_index
    from kb_core.bot.query import ticket_question
    from kb_core.categorize.configured import taxonomy_from_settings
    from kb_core.index.versions import active_version
    from kb_core.pii.configured import config_from_settings
    from kb_core.pii.scrubber import Scrubber
    from kb_core.sources import configured
    from kb_core.sources.pyrus_tasks import field_text

    taxonomy: Taxonomy = taxonomy_from_settings(settings)
    fields = configured.ticket_builder(settings).fields
    scrubber = Scrubber(config_from_settings(settings)) if scrub else None
    labelled = []
    created: dict[str, str] = {}
    for task in sample_tickets():
        category = taxonomy.canonical(field_text(task, fields.category))
        if category:
            labelled.append((str(task["id"]), category, ticket_question(task, fields)))
            created[str(task["id"])] = str(task.get("create_date") or "")
    fold_of = stratified_folds([(t, c) for t, c, _ in labelled], folds)
    members: dict[int, list[str]] = defaultdict(list)
    for ticket_id, fold in fold_of.items():
        members[fold].append(ticket_id)
    methods = ("knn+keywords", "knn", "keywords", "category_name_overlap")
    predictions: dict[str, list[str]] = {m: [] for m in methods}
    gold: list[str] = []
    confidences: list[tuple[float, bool]] = []
    with sample_index(scrub=scrub, name="categorization", settings=settings) as (conn, embedder):
        version = active_version(conn)
        for ticket_id, category, question in tqdm(
            labelled if kfold else [], desc="classify", unit="ticket"
        ):
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
        dated = [(created[t], t, c, scrubber.scrub(q) if scrubber else q) for t, c, q in labelled]
        time_results = evaluate_time_split(
            conn, embedder, dated, taxonomy, k=k, train_share=train_share
        )
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
    results["time_split"] = time_results
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--k", type=int, default=7)
    parser.add_argument("--no-scrub", action="store_true", help="classify unscrubbed text")
    parser.add_argument(
        "--train-share", type=float, default=0.6, help="older share of the time-ordered split"
    )
    parser.add_argument(
        "--time-split-only", action="store_true", help="skip the k-fold cross-validation"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from kb_core.settings import get_settings

    results = evaluate(
        get_settings(),
        args.folds,
        args.k,
        scrub=not args.no_scrub,
        train_share=args.train_share,
        kfold=not args.time_split_only,
    )
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    if results["tickets"]:  # the k-fold part ran
        print(f"{results['tickets']} labelled sample tickets, {results['folds']}-fold, k={args.k}")
        print(f"{'method':<24} {'accuracy':>9} {'macro-F1':>9}")
        for method, m in results["methods"].items():
            print(f"{method:<24} {m['accuracy']:>9.4f} {m['macro_f1']:>9.4f}")
        c = results["confidence_at_least_0.5"]
        print(f"confidence >= 0.5: {c['share']:.0%} of tickets, accuracy {c['accuracy']:.4f}")
    _print_time_split(results["time_split"])


def _print_time_split(split: dict[str, Any]) -> None:
    print()
    print(
        f"time-ordered split: train {split['train']} older tickets, test {split['test']} "
        f"newer (from {split['split_at']})"
    )
    print(
        f"{'variant':<24} {'accuracy':>9} {'macro-F1':>9} {'conf>=' + str(split['threshold']):>10}"
        f" {'acc there':>10}"
    )
    for name, v in split["variants"].items():
        print(
            f"{name:<24} {v['accuracy']:>9.4f} {v['macro_f1']:>9.4f} "
            f"{v['confident_share']:>10.0%} {v['confident_accuracy']:>10.4f}"
        )
    table = split["variants"]["learning_from_agents"]["confusion"]
    labels = sorted(set(table) | {p for row in table.values() for p in row})
    print("\nconfusion (learning_from_agents; rows: agent's category, columns: predicted)")
    for index, label in enumerate(labels):
        print(f"  {index:>2} {label}")
    print("    " + "".join(f"{i:>4}" for i in range(len(labels))))
    for index, label in enumerate(labels):
        if label in table:
            cells = "".join(f"{table[label].get(p, 0) or '.':>4}" for p in labels)
            print(f"  {index:>2}{cells}")


if __name__ == "__main__":
    main()
