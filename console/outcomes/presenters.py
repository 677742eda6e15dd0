"""How the outcome figures read: each trend chart with the numbers beside it, and the CSV.

The metrics compute; these only choose the series and put words and units on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from console.outcomes.charts import (
    Chart,
    duration_scale,
    line_chart,
    log_duration_scale,
    stacked_bars,
)
from console.outcomes.metrics import Figures, OutcomeFigures

TOP_REASONS = 5


def duration(seconds: float | None) -> str:
    """ "45s", "12m", "3h 05m", "2d 4h"; "—" for no value."""
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:g}%"


def count(value: float) -> str:
    return f"{value:,.0f}"


def ratio(value: float) -> str:
    return f"{value:.2f}"


@dataclass
class Panel:
    """One chart and the period's numbers beside it, plus its values bucket by bucket."""

    chart: Chart
    numbers: list[tuple[str, str]]
    note: str
    columns: list[str]
    rows: list[tuple[str, list[str]]]


def bucket_label(bucket: date, unit: str) -> str:
    return f"wk {bucket:%m-%d}" if unit == "week" else f"{bucket:%m-%d}"


def _table(
    labels: list[str], series: list[Figures], columns: list[tuple[str, Callable[[Figures], str]]]
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    return (
        [name for name, _ in columns],
        [
            (label, [show(f) for _, show in columns])
            for label, f in zip(labels, series, strict=True)
        ],
    )


def panels(
    figures: OutcomeFigures, workflow_id: int | None, reason_labels: dict[str, str]
) -> list[Panel]:
    """The page's charts for one workflow (or all of them), in the order a manager reads them."""
    labels = [bucket_label(b, figures.scope.unit) for b in figures.buckets]
    series = figures.series(workflow_id)
    total = figures.at(workflow_id, None)
    return list(_panels(labels, series, total, figures.reasons(workflow_id), reason_labels))


def _panels(
    labels: list[str],
    series: list[Figures],
    total: Figures,
    reasons: list[str],
    reason_labels: dict[str, str],
) -> Iterator[Panel]:
    yield Panel(
        stacked_bars(
            id="events",
            title="Events in",
            labels=labels,
            series=[
                ("received", [f.events_in for f in series]),
                ("replays", [f.events - f.events_in for f in series]),
            ],
            fmt=count,
        ),
        [("Received", count(total.events_in)), ("Replays", count(total.events - total.events_in))],
        "Events received from outside; replays made by people are stacked on top.",
        *_table(labels, series, [("received", lambda f: count(f.events_in))]),
    )
    yield Panel(
        stacked_bars(
            id="outcome",
            title="Outcome",
            labels=labels,
            series=[
                ("achieved", [f.achieved for f in series]),
                ("by hand", [f.manual for f in series]),
                ("failed", [f.failed for f in series]),
                ("missing", [f.missing for f in series]),
            ],
            fmt=count,
            percent=True,
        ),
        [
            ("Outcome rate", percent(total.outcome_rate)),
            ("By hand", percent(total.manual_rate)),
            ("Failed", percent(total.failed_rate)),
            ("Missing", percent(total.missing_rate)),
            ("Still on their way", count(total.pending)),
        ],
        f"Of {total.rated:,} events whose outcome is due. By hand: a person recorded it "
        f"({total.manual_achieved:,} achieved); counted apart, not as failures. Dismissed "
        f"({total.cancelled:,}) and replayed ({total.replayed:,}) events are left out.",
        *_table(
            labels,
            series,
            [
                ("rate", lambda f: percent(f.outcome_rate)),
                ("achieved", lambda f: count(f.achieved)),
                ("by hand", lambda f: count(f.manual)),
                ("failed", lambda f: count(f.failed)),
                ("missing", lambda f: count(f.missing)),
            ],
        ),
    )
    yield Panel(
        line_chart(
            id="cycle",
            title="Cycle time, receipt to outcome",
            labels=labels,
            series=[
                ("p50", [f.cycle_p50 for f in series]),
                ("p90", [f.cycle_p90 for f in series]),
                ("p99", [f.cycle_p99 for f in series]),
            ],
            fmt=duration,
            scale=log_duration_scale,
        ),
        [
            ("p50", duration(total.cycle_p50)),
            ("p90", duration(total.cycle_p90)),
            ("p99", duration(total.cycle_p99)),
        ],
        f"Over {total.with_outcome:,} events with an outcome (achieved or failed, by the "
        "automation or by hand). Logarithmic scale: medians and tails on one chart.",
        *_table(
            labels,
            series,
            [
                ("p50", lambda f: duration(f.cycle_p50)),
                ("p90", lambda f: duration(f.cycle_p90)),
                ("p99", lambda f: duration(f.cycle_p99)),
            ],
        ),
    )
    yield Panel(
        line_chart(
            id="errors",
            title="Error rate",
            labels=labels,
            series=[("errored", [f.error_rate for f in series])],
            fmt=lambda v: f"{v:g}%",
        ),
        [("Error rate", percent(total.error_rate)), ("Errored", count(total.errored))],
        "Events with a failed attempt, or a rule, processing, delivery or outcome failure case.",
        *_table(labels, series, [("error rate", lambda f: percent(f.error_rate))]),
    )
    shown = reasons[:TOP_REASONS]
    reason_series = [
        (reason_labels.get(code, code), [f.by_reason.get(code, 0) for f in series])
        for code in shown
    ]
    if len(reasons) > TOP_REASONS:
        rest = reasons[TOP_REASONS:]
        reason_series.append(("other", [sum(f.by_reason.get(c, 0) for c in rest) for f in series]))
    yield Panel(
        stacked_bars(
            id="reasons",
            title="Exceptions by reason code",
            labels=labels,
            series=reason_series,
            fmt=count,
        ),  # fmt: skip
        [(reason_labels.get(code, code), count(total.by_reason[code])) for code in reasons[:8]]
        or [("Cases", "0")],
        f"{total.cases:,} cases opened.",
        *_table(labels, series, [("cases", lambda f: count(f.cases))]),
    )
    yield Panel(
        line_chart(
            id="mtt",
            title="Time to acknowledge and to resolve",
            labels=labels,
            series=[("MTTA", [f.mtta for f in series]), ("MTTR", [f.mttr for f in series])],
            fmt=duration,
            scale=lambda lowest, highest: duration_scale(highest),
        ),
        [("MTTA", duration(total.mtta)), ("MTTR", duration(total.mttr))],
        f"Means over the cases opened: {total.acknowledged:,} acknowledged (or closed first), "
        f"{total.resolved:,} closed.",
        *_table(
            labels,
            series,
            [("MTTA", lambda f: duration(f.mtta)), ("MTTR", lambda f: duration(f.mttr))],
        ),
    )
    yield Panel(
        line_chart(
            id="touches",
            title="Manual touches per event",
            labels=labels,
            series=[("touches per event", [f.touches_per_event for f in series])],
            fmt=ratio,
        ),
        [("Per event", ratio(total.touches_per_event or 0)), ("Touches", count(total.touches))],
        "A person's entries on the audit trail about an event or its cases.",
        *_table(labels, series, [("per event", lambda f: ratio(f.touches_per_event or 0))]),
    )
    yield Panel(
        stacked_bars(
            id="automatic",
            title="Closed automatically or by a person",
            labels=labels,
            series=[
                ("automatic", [f.automatic for f in series]),
                ("by a person", [f.closed - f.automatic for f in series]),
            ],
            fmt=count,
            percent=True,
        ),
        [
            ("Automatic", percent(total.automatic_share)),
            ("By a person", percent(total.human_share)),
        ],
        f"Of {total.closed:,} events that succeeded or failed: by a person means a case opened "
        "or the outcome was recorded by hand.",
        *_table(labels, series, [("automatic", lambda f: percent(f.automatic_share))]),
    )


CSV_COLUMNS: list[tuple[str, Callable[[Figures], Any]]] = [
    ("events", lambda f: f.events),
    ("events_in", lambda f: f.events_in),
    ("achieved", lambda f: f.achieved),
    ("achieved_by_hand", lambda f: f.manual_achieved),
    ("manual", lambda f: f.manual),
    ("failed", lambda f: f.failed),
    ("missing", lambda f: f.missing),
    ("pending", lambda f: f.pending),
    ("replayed", lambda f: f.replayed),
    ("cancelled", lambda f: f.cancelled),
    ("outcome_rate_pct", lambda f: f.outcome_rate),
    ("manual_rate_pct", lambda f: f.manual_rate),
    ("cycle_p50_s", lambda f: f.cycle_p50),
    ("cycle_p90_s", lambda f: f.cycle_p90),
    ("cycle_p99_s", lambda f: f.cycle_p99),
    ("error_rate_pct", lambda f: f.error_rate),
    ("cases", lambda f: f.cases),
    ("mtta_s", lambda f: f.mtta),
    ("mttr_s", lambda f: f.mttr),
    ("manual_touches", lambda f: f.touches),
    ("touches_per_event", lambda f: f.touches_per_event),
    ("automatic_share_pct", lambda f: f.automatic_share),
]


def csv_rows(figures: OutcomeFigures) -> Iterator[list[Any]]:
    """A header, then one row per workflow and bucket, each workflow's period, and all."""
    yield ["workflow", "bucket", *(name for name, _ in CSV_COLUMNS)]
    named = [(wid, slug) for wid, slug, _ in figures.workflows] + [(None, "(all)")]
    for workflow_id, slug in named:
        for bucket in [*figures.buckets, None]:
            cell = figures.at(workflow_id, bucket)
            when = bucket.isoformat() if bucket else "(period)"
            yield [slug, when, *(_csv_value(show(cell)) for _, show in CSV_COLUMNS)]


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    return "" if value is None else value
