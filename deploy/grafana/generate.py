"""Hookline's Grafana dashboards as code.

    python deploy/grafana/generate.py           # (re)write the JSON files beside this script
    python deploy/grafana/generate.py --check   # exit 1 if a checked-in file differs

Plain Python and the standard library only: the output is deterministic, so the JSON in
the repository must equal what this script renders (a test checks it), and every PromQL
expression in it is evaluated against a real Prometheus scraping a running Hookline by
``tests/integration/test_observability.py``.

Conventions used by the expressions:

* ``$__rate_interval`` for every ``rate()`` (Grafana picks it from the scrape interval),
  ``$__range`` for "in the selected time range" totals.
* Consumer lag is a gauge every instance of a service reports for the *same* durable
  consumer, so it is aggregated with ``max by (consumer)``, never ``sum``.
* A stat that can have no series yet (nothing failed so far) ends in ``or vector(0)`` so it
  reads 0 rather than "No data"; the test removes that fallback before evaluating, so
  each expression must find real series.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "hookline-prometheus"}
RATE = "$__rate_interval"
RANGE = "$__range"
CONN = 'connector=~"$connector"'

Panel = dict[str, Any]


# ---------------------------------------------------------------- building blocks


def target(expr: str, legend: str = "", ref: str = "A") -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": True,
        "refId": ref,
    }


def _targets(queries: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)]


def _panel(
    kind: str,
    title: str,
    description: str,
    defaults: dict[str, Any],
    options: dict[str, Any],
    queries: list[tuple[str, str]],
    size: tuple[int, int],
) -> Panel:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": _targets(queries),
        "_size": size,
    }


def timeseries(
    title: str,
    queries: list[tuple[str, str]],
    *,
    unit: str = "short",
    description: str = "",
    width: int = 12,
    height: int = 8,
    max_value: float | None = None,
) -> Panel:
    defaults: dict[str, Any] = {
        "unit": unit,
        "min": 0,
        "custom": {"drawStyle": "line", "fillOpacity": 10, "lineWidth": 1, "showPoints": "never"},
    }
    if max_value is not None:
        defaults["max"] = max_value
    options = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel("timeseries", title, description, defaults, options, queries, (width, height))


def stat(
    title: str,
    expr: str,
    *,
    unit: str = "short",
    description: str = "",
    width: int = 6,
    height: int = 4,
    thresholds: list[tuple[float | None, str]] | None = None,
    decimals: int | None = None,
) -> Panel:
    steps = [{"color": color, "value": value} for value, color in (thresholds or [(None, "green")])]
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "color": {"mode": "thresholds"},
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "area",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "auto",
    }
    return _panel("stat", title, description, defaults, options, [(expr, "")], (width, height))


def layout(rows: list[tuple[str, list[Panel]]]) -> list[Panel]:
    """Give every panel an id and a grid position: rows of panels, left to right, 24 wide."""
    panels: list[Panel] = []
    next_id = 1
    y = 0
    for title, members in rows:
        panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "id": next_id,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id += 1
        y += 1
        x = 0
        line_height = 0
        for panel in members:
            width, height = panel.pop("_size")
            if x + width > 24:
                x, y, line_height = 0, y + line_height, 0
            panel["id"] = next_id
            panel["gridPos"] = {"h": height, "w": width, "x": x, "y": y}
            next_id += 1
            x += width
            line_height = max(line_height, height)
            panels.append(panel)
        y += line_height
    return panels


def dashboard(
    uid: str,
    title: str,
    description: str,
    rows: list[tuple[str, list[Panel]]],
    variables: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["hookline"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "timezone": "browser",
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["hookline"],
                "asDropdown": True,
                "title": "Hookline dashboards",
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "templating": {"list": variables or []},
        "panels": layout(rows),
    }


# ---------------------------------------------------------------- shared expressions


def lag_queries() -> list[tuple[str, str]]:
    return [
        (f"max by (consumer) (hookline_{service}_consumer_pending_messages)", "{{consumer}}")
        for service in ("mapper", "executor", "config")
    ]


def quantile(q: float, metric: str, by: str = "") -> str:
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({metric}_bucket[{RATE}])))"


def rate(metric: str, by: str = "") -> str:
    """Per second over the rate interval, summed (``by`` these labels, if any)."""
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}(rate({metric}[{RATE}]))"


def by(label: str, metric: str) -> tuple[str, str]:
    """A query (and its legend) of ``metric`` per second, one series per ``label`` value."""
    return rate(metric, label), f"{{{{{label}}}}}"


def percentiles(metric: str, qs: tuple[float, ...], by: str = "") -> list[tuple[str, str]]:
    """Queries of a histogram's quantiles, legends ``p50`` (``p50 {{label}}`` ``by`` one)."""
    suffix = f" {{{{{by}}}}}" if by else ""
    return [(quantile(q, metric, by), f"p{round(q * 100)}{suffix}") for q in qs]


def per_second(title: str, queries: list[tuple[str, str]], width: int = 12) -> Panel:
    return timeseries(title, queries, unit="reqps", width=width)


def ratio(status: str, by: str = "", selector: str = "") -> str:
    """Share of finished events with ``status`` (succeeded or failed)."""
    grouping = f" by ({by}) " if by else ""
    every = f"{{{selector}}}" if selector else ""
    some = f'{{{selector},status="{status}"}}' if selector else f'{{status="{status}"}}'
    metric = "hookline_executor_events_total"
    return (
        f"sum{grouping}(rate({metric}{some}[{RATE}]))"
        f" / sum{grouping}(rate({metric}{every}[{RATE}]))"
    )


ACCEPTED = f'sum(rate(hookline_ingest_requests_total{{status=~"2.."}}[{RATE}]))'


# ---------------------------------------------------------------- the dashboards


def overview() -> dict[str, Any]:
    lag_total = "sum(" + " or ".join(expr for expr, _ in lag_queries()) + ")"
    now = [
        stat(
            "Events in",
            ACCEPTED,
            unit="reqps",
            description="Webhook requests ingest answered 2xx (stored in JetStream), per second.",
        ),
        stat(
            "Success ratio",
            ratio("succeeded"),
            unit="percentunit",
            decimals=1,
            description="Share of finished events whose steps all succeeded.",
            thresholds=[(None, "red"), (0.95, "orange"), (0.99, "green")],
        ),
        stat(
            "Consumer lag",
            lag_total,
            description="Messages waiting for the mapper, executor and projector consumers.",
            thresholds=[(None, "green"), (1000, "orange"), (10000, "red")],
        ),
        stat(
            "Dead-lettered",
            f"sum(increase(hookline_executor_dead_lettered_total[{RANGE}])) or vector(0)",
            decimals=0,
            description="Events sent to the dead-letter subject in the time range "
            "(replayable from the event log).",
            thresholds=[(None, "green"), (1, "red")],
        ),
    ]
    flow = [
        timeseries(
            "Events per second: in and finished",
            [
                (ACCEPTED, "in (stored by ingest)"),
                (
                    f"sum by (status) (rate(hookline_executor_events_total[{RATE}]))",
                    "finished: {{status}}",
                ),
            ],
            unit="reqps",
        ),
        timeseries(
            "Success / failure ratio",
            [(ratio("succeeded"), "succeeded"), (ratio("failed"), "failed")],
            unit="percentunit",
            max_value=1,
        ),
        timeseries(
            "Store latency (publish to JetStream ack)",
            [
                (quantile(0.5, "hookline_ingest_store_seconds"), "p50"),
                (quantile(0.99, "hookline_ingest_store_seconds"), "p99"),
            ],
            unit="s",
            description="Ingest answers only after this ack: it is the floor of its latency.",
        ),
        timeseries(
            "Consumer lag (pending messages)",
            lag_queries(),
            description="Per durable consumer; every instance reports the same number, hence max.",
        ),
        timeseries(
            "Ingest responses by status",
            [
                (
                    f"sum by (status) (rate(hookline_ingest_requests_total[{RATE}]))",
                    "{{status}}",
                )
            ],
            unit="reqps",
        ),
        timeseries(
            "Dead-lettered per second by connector",
            [
                (
                    f"sum by (connector) (rate(hookline_executor_dead_lettered_total[{RATE}]))",
                    "{{connector}}",
                )
            ],
            unit="reqps",
        ),
    ]
    return dashboard(
        "hookline-overview",
        "Hookline / Overview",
        "Events in, success ratio, store latency, consumer lag and dead letters.",
        [("Now", now), ("Flow", flow)],
    )


def connector_stats() -> dict[str, Any]:
    def total(metric: str, matchers: str) -> str:
        return f"sum(increase({metric}{{{CONN}{matchers}}}[{RANGE}]))"

    accepted = total("hookline_ingest_requests_total", ',status=~"2.."')
    duplicates = total("hookline_ingest_duplicates_total", "")
    handshakes = total("hookline_ingest_handshakes_total", "")

    def count(title: str, expr: str, **options: Any) -> Panel:
        """A whole number over the range, 0 while there is no series yet."""
        return stat(title, f"{expr} or vector(0)", decimals=0, width=4, **options)

    alarm = [(None, "green"), (1, "red")]
    stats = [
        count(
            "Received",
            f"({accepted} - ({duplicates} or vector(0)) - ({handshakes} or vector(0)))",
            description="Requests stored as new events (2xx answers minus duplicates and "
            "handshakes).",
        ),
        count("Succeeded", total("hookline_executor_events_total", ',status="succeeded"')),
        count(
            "Failed", total("hookline_executor_events_total", ',status="failed"'), thresholds=alarm
        ),
        count(
            "Duplicates",
            duplicates,
            description="Re-sends dropped by the idempotency key (answered 2xx, not stored).",
        ),
        count(
            "Rejected",
            total("hookline_ingest_rejected_total", ""),
            description="Requests refused (4xx): signature, address, body, size, rate limit.",
            thresholds=[(None, "green"), (1, "orange")],
        ),
        count(
            "Dead-lettered", total("hookline_executor_dead_lettered_total", ""), thresholds=alarm
        ),
    ]
    by_connector = [
        timeseries(
            "Refused per second by reason",
            [
                (
                    "sum by (connector, reason) (rate(hookline_ingest_rejected_total"
                    f"{{{CONN}}}[{RATE}]))",
                    "{{connector}} {{reason}}",
                )
            ],
            unit="reqps",
            description="bad_signature, missing_signature, stale_timestamp, "
            "address_not_allowed, invalid_json, rate_limited, … (see the README's table).",
        ),
        timeseries(
            "Received per second",
            [
                (
                    "sum by (connector) (rate(hookline_ingest_requests_total"
                    f'{{{CONN},status=~"2.."}}[{RATE}]))',
                    "{{connector}}",
                )
            ],
            unit="reqps",
        ),
        timeseries(
            "Finished per second by status",
            [
                (
                    "sum by (connector, status) (rate(hookline_executor_events_total"
                    f"{{{CONN}}}[{RATE}]))",
                    "{{connector}} {{status}}",
                )
            ],
            unit="reqps",
        ),
        timeseries(
            "Rejected per second by status",
            [
                (
                    "sum by (connector, status) (rate(hookline_ingest_requests_total"
                    f'{{{CONN},status=~"4.."}}[{RATE}]))',
                    "{{connector}} {{status}}",
                )
            ],
            unit="reqps",
        ),
        timeseries(
            "Duplicates per second",
            [
                (
                    "sum by (connector) (rate(hookline_ingest_duplicates_total"
                    f"{{{CONN}}}[{RATE}]))",
                    "{{connector}}",
                )
            ],
            unit="reqps",
        ),
        timeseries(
            "Failure ratio",
            [(ratio("failed", by="connector", selector=CONN), "{{connector}}")],
            unit="percentunit",
            max_value=1,
        ),
        timeseries(
            "Dead-lettered and structure drift per second",
            [
                (
                    "sum by (connector) (rate(hookline_executor_dead_lettered_total"
                    f"{{{CONN}}}[{RATE}]))",
                    "dead-lettered {{connector}}",
                ),
                (
                    f"sum by (connector) (rate(hookline_mapper_drift_total{{{CONN}}}[{RATE}]))",
                    "drift {{connector}}",
                ),
            ],
            unit="reqps",
        ),
    ]
    variable = {
        "name": "connector",
        "label": "Connector",
        "type": "query",
        "datasource": DATASOURCE,
        "query": 'label_values(hookline_ingest_requests_total{connector!="unknown"}, connector)',
        "definition": 'label_values(hookline_ingest_requests_total{connector!="unknown"}, '
        "connector)",
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "regex": "",
        "hide": 0,
        "options": [],
    }
    return dashboard(
        "hookline-connector-stats",
        "Hookline / Connector stats",
        "Received, succeeded, failed, duplicates and rejected per connector. Connector "
        'labels are capped by HOOKLINE_METRICS_MAX_CONNECTORS; the rest read "other".',
        [("Totals in the time range", stats), ("Per connector", by_connector)],
        [variable],
    )


def pipeline_health() -> dict[str, Any]:
    services = [
        timeseries(
            "Instances up by service",
            [('sum by (job) (up{job=~"hookline-.+"})', "{{job}}")],
            description="Scrape targets answering /metrics.",
            width=24,
            height=6,
        ),
    ]
    ingest = [
        per_second(
            "Requests per second by status", [by("status", "hookline_ingest_requests_total")], 6
        ),
        per_second(
            "Refused per second by reason", [by("reason", "hookline_ingest_rejected_total")], 6
        ),
        per_second(
            "Store failures (answered 503) per second",
            [(rate("hookline_ingest_store_failures_total"), "no JetStream ack")],
            6,
        ),
        timeseries(
            "Store latency",
            percentiles("hookline_ingest_store_seconds", (0.5, 0.9, 0.99)),
            unit="s",
            width=6,
        ),
        timeseries(
            "Request body size",
            percentiles("hookline_ingest_body_bytes", (0.5, 0.99)),
            unit="bytes",
            width=6,
        ),
    ]
    mapper = [
        per_second(
            "Mapper messages per second by outcome",
            [by("outcome", "hookline_mapper_messages_total")],
            8,
        ),
        per_second(
            "Redeliveries per second",
            [
                (rate(f"hookline_{service}_redeliveries_total"), service)
                for service in ("mapper", "executor")
            ],
            8,
        ),
        per_second(
            "Structures learned and drift per second",
            [
                (rate("hookline_mapper_structures_learned_total"), "learned"),
                (rate("hookline_mapper_drift_total"), "drift"),
            ],
            8,
        ),
    ]
    executor = [
        per_second(
            "Executor messages per second by outcome",
            [by("outcome", "hookline_executor_messages_total")],
            6,
        ),
        per_second(
            "Steps per second by type", [by("step_type", "hookline_executor_step_seconds_count")], 6
        ),
        timeseries(
            "Step duration by type",
            percentiles("hookline_executor_step_seconds", (0.5, 0.99), "step_type"),
            unit="s",
            width=6,
        ),
        per_second(
            "Dead-lettered per second",
            [(rate("hookline_executor_dead_lettered_total"), "dead-lettered")],
            6,
        ),
    ]
    consumers = [
        timeseries(
            "Consumer lag (pending messages)",
            lag_queries(),
            description="Per durable consumer; every instance reports the same number, hence max.",
        ),
        per_second(
            "Projector messages per second",
            [by("projection", "hookline_config_projected_messages_total")],
        ),
    ]
    config_api = [
        per_second(
            "Config API requests per second",
            [
                (
                    rate("hookline_config_requests_total", "route, status"),
                    "{{route}} {{status}}",
                )
            ],
        ),
        timeseries(
            "Config API latency p99 by route",
            [(quantile(0.99, "hookline_config_request_seconds", "route"), "{{route}}")],
            unit="s",
        ),
    ]
    return dashboard(
        "hookline-pipeline-health",
        "Hookline / Pipeline health",
        "Every stage: ingest, mapper, executor, consumers (lag) and the config API.",
        [
            ("Services", services),
            ("Ingest", ingest),
            ("Mapper", mapper),
            ("Executor", executor),
            ("Consumers", consumers),
            ("Config API", config_api),
        ],
    )


DASHBOARDS = {
    "overview.json": overview,
    "connector-stats.json": connector_stats,
    "pipeline-health.json": pipeline_health,
}


def render() -> dict[str, str]:
    """File name -> the exact text to write (stable: same input, same bytes)."""
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("out of date (run python deploy/grafana/generate.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
