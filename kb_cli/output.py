"""Where `kb` prints, and the two tables more than one command prints.

One console for results (stdout) and one for progress and errors (stderr), shared by
every command module so `kb … --json | jq` only ever sees the results.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from kb_core.models import SearchHit

console = Console()
err_console = Console(stderr=True)


def print_ingest_summary(summary: dict[str, dict[str, object]], seconds: float) -> None:
    """One row per asset and check of an ingest run, with its scalar metadata."""
    table = Table(title=f"Ingest finished in {seconds:.1f} s", show_lines=False)
    table.add_column("asset")
    table.add_column("result")
    for asset, metadata in summary.items():
        shown = {
            k: v
            for k, v in metadata.items()
            if not isinstance(v, dict | list)
            # rag_eval reports every metric of every mode: the summary keeps the gated ones
            and (" " not in k or k in ("hybrid hit@5", "hybrid mrr@10"))
        }
        table.add_row(asset, ", ".join(f"{k}={v}" for k, v in shown.items()))
    console.print(table)


def print_hits(query: str, hits: list[SearchHit]) -> None:
    """Search hits as a table in which every score explains itself."""
    table = Table(title=f"«{query}»", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("document")
    table.add_column("snippet")
    for rank, hit in enumerate(hits, 1):
        document = hit.title
        if hit.heading_path and hit.heading_path != (hit.title,):
            document += "\n[dim]" + " › ".join(hit.heading_path) + "[/dim]"
        parts = [f"{hit.score:.3f}"]
        if hit.vector_score is not None:
            parts.append(f"[dim]vec {hit.vector_score:.2f}[/dim]")
        if hit.lexical_score is not None:
            parts.append(f"[dim]bm25 {hit.lexical_score:.1f}[/dim]")
        for name, factor in hit.boosts.items():
            parts.append(f"[dim]×{factor:g} {name}[/dim]")
        table.add_row(str(rank), "\n".join(parts), document, hit.snippet)
    if not hits:
        console.print(f"«{query}»: nothing found — is the knowledge base ingested?")
    else:
        console.print(table)
