"""Coverage of the effect intervals on simulated histories with a planted effect.

Each seed simulates the default history (kb_core.effect.simulation: six categories, a
30 % faster first response planted in three, none in the others, 10 % holdout) and
estimates the controlled first-response effect per category. Reported: how often the
interval contains the planted change (coverage; nominal = the confidence level), how
often it excludes zero where an effect was planted (power) and where none was (false
alarms), and the mean interval width.

    python -m evals.effect_simulation [--seeds 40] [--resamples 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any

from kb_core.effect.estimate import EstimateConfig, category_effect
from kb_core.effect.simulation import DEFAULT_SPECS, SimulationConfig, simulate


def coverage(seeds: int, resamples: int, level: float, holdout_share: float) -> dict[str, Any]:
    base = EstimateConfig(
        resamples=resamples, level=level, metrics=("first_response",), before_after=False
    )
    sim = SimulationConfig(holdout_share=holdout_share)
    tally: dict[str, dict[str, float]] = {
        kind: {"intervals": 0, "covered": 0, "excludes_zero": 0, "width": 0.0}
        for kind in ("planted", "none")
    }
    for seed in range(seeds):
        records = simulate(DEFAULT_SPECS, sim, seed=seed)
        config = replace(base, seed=seed)
        for spec in DEFAULT_SPECS:
            effect = category_effect(
                spec.name, [r for r in records if r.category == spec.name], config
            ).controlled["first_response"]
            kind = "planted" if spec.first_response_effect else "none"
            row = tally[kind]
            row["intervals"] += 1
            if effect.status != "ok" or effect.low is None or effect.high is None:
                continue
            row["covered"] += effect.contains(-spec.first_response_effect)
            row["excludes_zero"] += effect.significant
            row["width"] += effect.high - effect.low
    out: dict[str, Any] = {
        "seeds": seeds,
        "level": level,
        "resamples": resamples,
        "holdout_share": holdout_share,
    }
    for kind, row in tally.items():
        n = max(row["intervals"], 1)
        out[kind] = {
            "intervals": int(row["intervals"]),
            "coverage": round(row["covered"] / n, 4),
            "excludes_zero": round(row["excludes_zero"] / n, 4),
            "mean_width": round(row["width"] / n, 4),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--level", type=float, default=0.95)
    parser.add_argument("--holdout-share", type=float, default=0.1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = coverage(args.seeds, args.resamples, args.level, args.holdout_share)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{args.seeds} simulated histories, holdout {args.holdout_share:.0%}, "
        f"{args.level:.0%} percentile-bootstrap intervals ({args.resamples} resamples)"
    )
    for kind, label in (("planted", "planted −30 %"), ("none", "no effect")):
        row = result[kind]
        print(
            f"{label:<14} intervals {row['intervals']:>4}  coverage {row['coverage']:.3f}  "
            f"excludes zero {row['excludes_zero']:.3f}  mean width {row['mean_width']:.3f}"
        )


if __name__ == "__main__":
    main()
