"""The assistant's effect with a confidence interval, per category and in total.

Two comparisons, same estimator:

- **controlled**: assisted tickets against the holdout (tickets the bot sat out, chosen
  by ticket id, see ``holdout``). Randomised, so a difference is the bot's doing.
- **before/after**: assisted tickets against tickets created before the assistant was
  switched on (KB_EFFECT_ASSISTANT_START). Not randomised: seasonality, a changed mix of
  categories, new agents or a new product version move it too. Shown beside the
  controlled figure, never instead of it.

Metrics per ticket and the statistic compared:

- ``first_response`` and ``resolution`` (seconds): the relative change of the **median**,
  ``median(assisted) / median(control) - 1`` (-0.30 = 30 % faster). Medians, because
  response times are heavy-tailed and a handful of forgotten tickets would dominate a mean;
  a ratio, because categories differ by an order of magnitude in their times.
- ``reopen_rate``: the difference of the shares of reopened tickets (percentage points).
- ``agent_replies``: the difference of the mean number of agent replies.

Interval: a percentile bootstrap, resampling each arm independently with replacement
(``resamples`` times, default 2000), at ``level`` (default 0.95). The generator is seeded
from the category and metric, so a report is reproducible. Minimum-sample rule: a
comparison needs at least ``min_sample`` tickets with the metric in *each* arm; below it
the result is "insufficient" (shown as «мало данных») and carries no number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import numpy as np
import numpy.typing as npt

from kb_core.settings import EffectSettings, defaults_of

RecordArm = Literal["assisted", "holdout", "before"]
Metric = Literal["first_response", "resolution", "reopen_rate", "agent_replies"]
METRICS: tuple[Metric, ...] = ("first_response", "resolution", "reopen_rate", "agent_replies")
Comparison = Literal["controlled", "before_after"]
Status = Literal["ok", "insufficient"]

_EFFECT = defaults_of(EffectSettings)
DEFAULT_RESAMPLES: int = _EFFECT["bootstrap_resamples"]
DEFAULT_LEVEL: float = _EFFECT["confidence_level"]
DEFAULT_MIN_SAMPLE: int = _EFFECT["min_sample"]
#: Largest resamples × sample size array drawn at once (memory, not precision).
_BLOCK_CELLS = 2_000_000

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TicketRecord:
    """What the estimator needs of one ticket (numbers and labels only)."""

    task_id: int
    category: str
    arm: RecordArm
    day: date
    first_response_s: float | None
    resolution_s: float | None
    reopened: bool | None
    agent_replies: int | None
    outcome: str | None = None  # accepted | edited | rewritten | not_used | no_reply
    # False: assisted while the holdout was off (no recorded arm). Such tickets count
    # for before/after but not for the controlled comparison, which must be randomised.
    randomised: bool = True

    def value(self, metric: Metric) -> float | None:
        if metric == "first_response":
            return self.first_response_s
        if metric == "resolution":
            return self.resolution_s
        if metric == "reopen_rate":
            return None if self.reopened is None else float(self.reopened)
        return None if self.agent_replies is None else float(self.agent_replies)


@dataclass(frozen=True)
class Effect:
    """One metric's comparison. ``estimate``/``low``/``high``: relative change of the
    median for times, difference for the rate and the replies; None when insufficient."""

    metric: Metric
    n_assisted: int
    n_control: int
    assisted: float | None  # median (times, seconds), share (rate) or mean (replies)
    control: float | None
    estimate: float | None
    low: float | None
    high: float | None
    status: Status

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.status == "ok" and (
            (self.low is not None and self.low > 0) or (self.high is not None and self.high < 0)
        )

    def contains(self, value: float) -> bool:
        return self.low is not None and self.high is not None and self.low <= value <= self.high


@dataclass(frozen=True)
class MinutesSaved:
    """Minutes of time to first response saved on the assisted tickets, measured:
    assisted tickets × (mean control − mean assisted), with its bootstrap interval."""

    minutes: float | None
    low: float | None
    high: float | None
    status: Status
    n_assisted: int


@dataclass(frozen=True)
class CategoryEffect:
    category: str | None  # None: all categories
    assisted: int  # randomised into the assisted arm
    unrandomised: int  # assisted while the holdout was off
    holdout: int
    before: int
    controlled: dict[str, Effect] = field(default_factory=dict)
    before_after: dict[str, Effect] = field(default_factory=dict)
    minutes_saved: MinutesSaved | None = None
    drafts_used: int = 0  # accepted + edited among the assisted tickets


@dataclass(frozen=True)
class EstimateConfig:
    min_sample: int = DEFAULT_MIN_SAMPLE
    level: float = DEFAULT_LEVEL
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    metrics: tuple[Metric, ...] = METRICS
    before_after: bool = True


def _rng(seed: int, *parts: str) -> np.random.Generator:
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _boot(
    values: Floats, stat: Callable[[Floats], Floats], resamples: int, rng: np.random.Generator
) -> Floats:
    """``stat`` of ``resamples`` bootstrap samples of ``values`` (row-wise)."""
    n = len(values)
    block = max(1, _BLOCK_CELLS // max(n, 1))
    out: list[Floats] = []
    done = 0
    while done < resamples:
        size = min(block, resamples - done)
        out.append(stat(values[rng.integers(0, n, size=(size, n))]))
        done += size
    return np.concatenate(out)


def _median(a: Floats) -> Floats:
    return np.asarray(np.median(a, axis=-1), dtype=np.float64)


def _mean(a: Floats) -> Floats:
    return np.asarray(np.mean(a, axis=-1), dtype=np.float64)


def compare(
    metric: Metric,
    assisted: Sequence[float],
    control: Sequence[float],
    config: EstimateConfig,
    rng: np.random.Generator,
) -> Effect:
    """One metric, assisted against control (see the module docstring)."""
    a = np.asarray(assisted, dtype=np.float64)
    c = np.asarray(control, dtype=np.float64)
    if len(a) < config.min_sample or len(c) < config.min_sample:
        return Effect(metric, len(a), len(c), None, None, None, None, None, "insufficient")
    relative = metric in ("first_response", "resolution")
    stat = _median if relative else _mean
    point_a, point_c = float(stat(a)), float(stat(c))
    boot_a = _boot(a, stat, config.resamples, rng)
    boot_c = _boot(c, stat, config.resamples, rng)
    if relative:
        if point_c <= 0 or np.any(boot_c <= 0):
            return Effect(
                metric, len(a), len(c), point_a, point_c, None, None, None, "insufficient"
            )
        estimate = point_a / point_c - 1.0
        diffs = boot_a / boot_c - 1.0
    else:
        estimate = point_a - point_c
        diffs = boot_a - boot_c
    tail = (1.0 - config.level) / 2.0
    low, high = np.quantile(diffs, [tail, 1.0 - tail])
    return Effect(metric, len(a), len(c), point_a, point_c, estimate, float(low), float(high), "ok")


def minutes_saved(
    assisted: Sequence[float],
    control: Sequence[float],
    config: EstimateConfig,
    rng: np.random.Generator,
) -> MinutesSaved:
    """Assisted tickets × the measured drop of the mean time to first response (minutes).

    A mean, not the median of ``compare``: a total of minutes is a sum, and the mean is
    the figure whose multiple is that sum. Negative when the bot made things slower.
    """
    a = np.asarray(assisted, dtype=np.float64) / 60.0
    c = np.asarray(control, dtype=np.float64) / 60.0
    if len(a) < config.min_sample or len(c) < config.min_sample:
        return MinutesSaved(None, None, None, "insufficient", len(a))
    diffs = _boot(c, _mean, config.resamples, rng) - _boot(a, _mean, config.resamples, rng)
    tail = (1.0 - config.level) / 2.0
    low, high = np.quantile(diffs * len(a), [tail, 1.0 - tail])
    point = (float(np.mean(c)) - float(np.mean(a))) * len(a)
    return MinutesSaved(point, float(low), float(high), "ok", len(a))


def _values(
    records: Iterable[TicketRecord],
    arm: RecordArm,
    metric: Metric,
    *,
    randomised_only: bool = True,
) -> list[float]:
    out = []
    for record in records:
        if record.arm == arm and (record.randomised or not randomised_only):
            value = record.value(metric)
            if value is not None:
                out.append(value)
    return out


def category_effect(
    category: str | None, records: Sequence[TicketRecord], config: EstimateConfig
) -> CategoryEffect:
    """Both comparisons of every metric over ``records`` (one category, or all)."""
    key = category if category is not None else "\x00total"
    controlled: dict[str, Effect] = {}
    before_after: dict[str, Effect] = {}
    for metric in config.metrics:
        controlled[metric] = compare(
            metric,
            _values(records, "assisted", metric),
            _values(records, "holdout", metric),
            config,
            _rng(config.seed, key, metric, "controlled"),
        )
        if not config.before_after:
            continue
        before_after[metric] = compare(
            metric,
            _values(records, "assisted", metric, randomised_only=False),
            _values(records, "before", metric),
            config,
            _rng(config.seed, key, metric, "before_after"),
        )
    saved = minutes_saved(
        _values(records, "assisted", "first_response"),
        _values(records, "holdout", "first_response"),
        config,
        _rng(config.seed, key, "minutes_saved"),
    )
    return CategoryEffect(
        category=category,
        assisted=sum(1 for r in records if r.arm == "assisted" and r.randomised),
        unrandomised=sum(1 for r in records if r.arm == "assisted" and not r.randomised),
        holdout=sum(1 for r in records if r.arm == "holdout"),
        before=sum(1 for r in records if r.arm == "before"),
        controlled=controlled,
        before_after=before_after,
        minutes_saved=saved,
        drafts_used=sum(
            1 for r in records if r.arm == "assisted" and r.outcome in ("accepted", "edited")
        ),
    )


def estimate_effects(
    records: Sequence[TicketRecord], config: EstimateConfig | None = None
) -> tuple[list[CategoryEffect], CategoryEffect]:
    """Per category (most tickets first) and over all categories.

    The total pools the categories: fair for the controlled comparison, whose arms share
    the mix of categories by construction; for before/after a shifted mix moves it too.
    """
    config = config or EstimateConfig()
    by_category: dict[str, list[TicketRecord]] = {}
    for record in records:
        by_category.setdefault(record.category, []).append(record)
    ordered = sorted(by_category, key=lambda c: (-len(by_category[c]), c))
    per_category = [category_effect(c, by_category[c], config) for c in ordered]
    return per_category, category_effect(None, records, config)


def weekly_effect(
    records: Sequence[TicketRecord],
    config: EstimateConfig | None = None,
    metric: Metric = "first_response",
) -> list[tuple[date, Effect]]:
    """The controlled effect of each ISO week (all categories): the chart over time.

    A week is the unit because a day of holdout tickets is rarely above the minimum
    sample; weeks below it are returned as "insufficient" and drawn as gaps.
    """
    config = config or EstimateConfig()
    weeks: dict[date, list[TicketRecord]] = {}
    for record in records:
        monday = date.fromordinal(record.day.toordinal() - record.day.weekday())
        weeks.setdefault(monday, []).append(record)
    out = []
    for monday in sorted(weeks):
        group = weeks[monday]
        out.append(
            (
                monday,
                compare(
                    metric,
                    _values(group, "assisted", metric),
                    _values(group, "holdout", metric),
                    config,
                    _rng(config.seed, monday.isoformat(), metric, "weekly"),
                ),
            )
        )
    return out
