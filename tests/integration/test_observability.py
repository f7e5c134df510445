"""Observability and deployment files, proven rather than assumed.

* A real ``prometheus`` (Debian package; installed here if missing) scrapes a running
  Hookline (the four services in this process, on loopback ports) every second, with
  ``deploy/prometheus/alerts.yml`` loaded.  Events go through ingest (accepted, duplicate,
  rejected, drifted, dead-lettered, and finally refused with 503 because JetStream stops
  acknowledging), then EVERY PromQL expression of the generated dashboards and of the
  alert rules is evaluated through Prometheus' HTTP API and must return data.
* ``promtool check rules`` / ``check config`` pass, and ``promtool test rules`` shows each
  alert firing on synthetic series (and staying quiet on healthy ones).
* The checked-in dashboards equal what ``deploy/grafana/generate.py`` renders.
* Compose and Kubernetes files are checked offline (YAML, structure, Kubernetes schemas).

How alert expressions are evaluated: an alert is a condition, empty while all is well,
so the test evaluates its *signal*: the expression with every comparison against a number
removed (``x > 0.01`` -> ``x``) and ``absent(x)`` read as ``x``.  That signal must return
data, which proves every metric name, label and function in it is right; on top of that
Prometheus itself evaluates the real rules (their health must be ``ok``), and the 5xx,
store-failure and dead-letter alerts must actually become pending or firing, since the
test creates those conditions.  Fallbacks such as ``or vector(0)`` are removed before
evaluating anything, so no expression can pass on a constant.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import nats
import pytest
import yaml
from nats.js.api import DiscardPolicy

from libs.infra.settings import Settings
from tests.support.fixtures import free_port, wait_for
from tests.support.system import Api, InProcessSystem, Receiver

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GRAFANA = DEPLOY / "grafana"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
SCRAPE = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARDS = ("overview.json", "connector-stats.json", "pipeline-health.json")
SERVICES = ("ingest", "config", "mapper", "executor")
# The deployed processes: the four services, and the config service's projector role apart.
MODULES = {name: f"services.{name}" for name in SERVICES} | {
    "projector": "services.config.projector_main"
}

# What Grafana would put in place of its variables for this test's time span.
RATE_INTERVAL = "1m"
RANGE = "1h"
FALLBACK = re.compile(r"\s+or\s+vector\(\s*0\s*\)")
COMPARISON = re.compile(
    r"\s*(?:==|!=|>=|<=|>|<)\s*(?:bool\s+)?-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.\[])"
)
ABSENT = re.compile(r"\babsent\(")
METRIC_NAME = re.compile(r"\bhookline_[a-z0-9_]+\b")

NETWORK_ERRORS = (
    "Temporary failure resolving",
    "Could not resolve",
    "Failed to fetch",
    "Network is unreachable",
    "Connection timed out",
    "Unable to connect",
)

N_EVENTS = 40  # plain events of the healthy connector (besides its first, drifts, duplicates)
DEADLINE_S = 40.0  # for Prometheus to have scraped and evaluated everything


# ------------------------------------------------------------------ prometheus binaries


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(
        ["apt-get", *args], capture_output=True, text=True, timeout=600, env=env, check=False
    )


@pytest.fixture(scope="session")
def prometheus_bin() -> dict[str, str]:
    """Paths of ``prometheus`` and ``promtool``; installs the Debian package if missing."""
    if not (shutil.which("prometheus") and shutil.which("promtool")):
        if shutil.which("apt-get") is None:
            pytest.fail("prometheus is not installed and there is no apt-get to install it")
        install = ("install", "-y", "--no-install-recommends", "prometheus")
        result = _apt(*install)
        if result.returncode != 0:  # stale or missing package lists: refresh once
            update = _apt("update")
            result = _apt(*install) if update.returncode == 0 else update
        if result.returncode != 0:
            output = result.stdout + result.stderr
            if any(marker in output for marker in NETWORK_ERRORS):
                pytest.skip("cannot install prometheus: no network to the Debian mirror")
            pytest.fail(f"apt-get install prometheus failed:\n{output[-3000:]}")
    found = {name: shutil.which(name) for name in ("prometheus", "promtool")}
    missing = [name for name, path in found.items() if path is None]
    assert not missing, f"still missing after install: {missing}"
    return {name: str(path) for name, path in found.items()}


# ------------------------------------------------------------------ expressions


def dashboard_panels() -> Iterator[tuple[str, dict[str, Any]]]:
    for name in DASHBOARDS:
        data = json.loads((GRAFANA / name).read_text())
        stack = list(data["panels"])
        while stack:
            panel = stack.pop(0)
            stack.extend(panel.get("panels", []))
            yield name, panel


def dashboard_exprs() -> list[tuple[str, str]]:
    """(where, expr) for every query of every panel of every dashboard."""
    found = []
    for name, panel in dashboard_panels():
        for target in panel.get("targets", []):
            found.append((f"{name} / {panel['title']} / {target['refId']}", target["expr"]))
    return found


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def for_prometheus(expr: str, connectors: list[str]) -> str:
    """A dashboard expression as Grafana would send it, without its ``or vector(0)``."""
    chosen = "(" + "|".join(re.escape(c) for c in connectors) + ")"
    expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__range", RANGE)
    expr = expr.replace("${connector}", chosen).replace("$connector", chosen)
    assert "$" not in expr, f"unsubstituted Grafana variable in {expr!r}"
    return FALLBACK.sub("", expr)


def signal(expr: str) -> str:
    """An alert's condition without its thresholds: what must return data."""
    return ABSENT.sub("(", COMPARISON.sub("", FALLBACK.sub("", expr)))


def test_signal_transformation() -> None:
    assert signal('up{job=~"hookline-.+"} == 0') == 'up{job=~"hookline-.+"}'
    assert signal("sum(rate(x[5m])) / sum(rate(y[5m])) > 0.01") == (
        "sum(rate(x[5m])) / sum(rate(y[5m]))"
    )
    assert signal('absent(up{job="a"}) or absent(up{job="b"})') == (
        '(up{job="a"}) or (up{job="b"})'
    )
    assert signal("a > 1000 and deriv(a[10m]) > 0") == "a and deriv(a[10m])"
    assert (
        signal('histogram_quantile(0.99, x{le="0.5"})') == 'histogram_quantile(0.99, x{le="0.5"})'
    )


# ------------------------------------------------------------------ the running system


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    ok = await Receiver().start()
    failing = await Receiver(statuses=[500] * 1000).start()  # every call is a 5xx
    yield ok, failing
    await failing.stop()
    await ok.stop()


def prometheus_config(ports: dict[str, int]) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with its jobs pointed at this test's ports."""
    config = yaml.safe_load(SCRAPE.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(ALERTS)]
    jobs = []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if not name.startswith("hookline-"):
            continue
        service = name.removeprefix("hookline-")
        job = {key: value for key, value in job.items() if not key.endswith("_sd_configs")}
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[service]}"]}]
        jobs.append(job)
    assert sorted(j["job_name"] for j in jobs) == sorted(f"hookline-{s}" for s in MODULES)
    config["scrape_configs"] = jobs
    return config


def spawn_prometheus(binary: str, config: Path, tsdb: Path, port: int, log: Path) -> Any:
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tsdb}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_process(proc: Any) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture
async def prometheus(
    prometheus_bin: dict[str, str], system: InProcessSystem, tmp_path: Path
) -> AsyncIterator[str]:
    """A real Prometheus scraping this test's services every second; yields its URL."""
    ports = {name: int(system.apps[name].url.rsplit(":", 1)[1]) for name in SERVICES}
    # In process, one config app runs both roles: the projector job scrapes it too.
    ports["projector"] = ports["config"]
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(prometheus_config(ports)))
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    proc = spawn_prometheus(
        prometheus_bin["prometheus"], config_path, tmp_path / "tsdb", port, log_path
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:

            async def ready() -> bool:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with s.get(base + "/-/ready") as r:
                        return r.status == 200
                return False

            await wait_for(ready, timeout_s=20, what="prometheus /-/ready")

            # Targets are applied a few seconds after start: wait for the first scrape of
            # every service, so that the traffic that follows is seen as increases.
            async def scraping() -> bool:
                answer = await query(s, base, 'count(up{job=~"hookline-.+"} == 1)')
                return values(answer) == [float(len(MODULES))]

            await wait_for(scraping, timeout_s=20, what="the first scrape of every service")
        yield base
    finally:
        stop_process(proc)


# ------------------------------------------------------------------ traffic


def step(url: str) -> dict[str, Any]:
    return {
        "steps": [
            {
                "type": "http",
                "id": "notify",
                "method": "POST",
                "url": url,
                "headers": {"Content-Type": "application/json"},
                "body": '{"order": {{ body.order_id | json }}}',
            }
        ]
    }


async def block_event_store(settings: Settings) -> None:
    """Make JetStream refuse new messages on this test's EVENTS stream (it is full and
    discards new ones), so ingest's publishes get no ack and it answers 503."""
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(settings.stream_events)
        config = info.config
        config.max_msgs = max(info.state.messages, 1)
        config.discard = DiscardPolicy.NEW
        await js.update_stream(config)
    finally:
        await nc.close()


async def drive(
    system: InProcessSystem,
    prometheus: str,
    session: aiohttp.ClientSession,
    receivers: tuple[Receiver, Receiver],
) -> dict[str, Any]:
    """Send every kind of request the dashboards and alerts count; return what was sent.

    A labelled series appears with its first increment, and Prometheus cannot see an
    increase before its first sample (``rate`` and ``increase`` read it as 0).  So each
    new kind of series is made in two waves: one request, wait until Prometheus has
    scraped the new series, then the rest."""
    ok, failing = receivers
    api = Api(session, system.apps["config"].url, system.settings.admin_token)
    shop = await api.create_connector("shop", {**step(ok.url), "idempotency_key": "body.order_id"})
    flaky = await api.create_connector("flaky", step(failing.url))
    await system.knows(shop)
    await system.knows(flaky)
    shop_url, flaky_url = system.ingest_url(shop), system.ingest_url(flaky)
    shop_id, flaky_id = shop["id"], flaky["id"]

    async def post(url: str, body: Any, expect: int) -> None:
        async with session.post(url, json=body) as r:
            assert r.status == expect, (r.status, await r.text())

    async def invalid_json() -> None:
        headers = {"Content-Type": "application/json"}
        async with session.post(shop_url, data=b"{not json", headers=headers) as r:
            assert r.status == 400

    async def seen(selector: str) -> None:
        async def scraped() -> bool:
            return bool(values(await query(session, prometheus, selector)))

        await wait_for(scraped, timeout_s=15, what=f"Prometheus to scrape {selector}")

    # The first event creates the healthy connector's series and teaches the mapper the
    # structure; later events are checked against it.
    await post(shop_url, {"order_id": 0, "name": "first"}, 200)
    await wait_for(lambda: len(ok.calls) >= 1, what="the first event to be executed")
    await seen(f'hookline_executor_events_total{{connector="{shop_id}",status="succeeded"}}')
    await seen(f'hookline_ingest_requests_total{{connector="{shop_id}",status="200"}}')
    await seen('hookline_executor_step_seconds_count{step_type="http"}')

    limit = asyncio.Semaphore(10)

    async def bounded(order_id: int) -> None:
        async with limit:
            await post(shop_url, {"order_id": order_id, "name": f"n{order_id}"}, 200)

    await asyncio.gather(*(bounded(i) for i in range(1, N_EVENTS + 1)))

    async with session.get(system.apps["ingest"].url + "/metrics") as r:
        exported = await r.text()
    if "hookline_ingest_duplicates_total" not in exported:
        pytest.fail(
            "ingest does not export hookline_ingest_duplicates_total{connector}: the "
            "connector-stats dashboard's Duplicates panels need it (see deploy/README.md)"
        )
    await post(shop_url, {"order_id": 1, "name": "n1"}, 200)  # duplicate: same key
    await seen(f'hookline_ingest_duplicates_total{{connector="{shop_id}"}}')
    await post(shop_url, {"order_id": 2, "name": "n2"}, 200)
    await post(shop_url, {"order_id": 9001, "name": "x", "coupon": "NEW"}, 200)  # drift
    await seen(f'hookline_mapper_drift_total{{connector="{shop_id}"}}')
    await post(shop_url, {"order_id": 9002, "name": "y", "coupon": "OLD"}, 200)
    await invalid_json()  # rejected
    await seen(f'hookline_ingest_requests_total{{connector="{shop_id}",status="400"}}')
    await invalid_json()
    async with session.post(shop_url.rsplit("/", 1)[0] + "/no-such-token", json={}) as r:
        assert r.status == 404

    # Every attempt gets a 500: retried, then dead-lettered.
    attempts = len(system.settings.backoff_schedule) + 1
    await post(flaky_url, {"order_id": 1}, 200)
    await wait_for(lambda: len(failing.calls) >= attempts, what="retries", timeout_s=15)
    await seen(f'hookline_executor_dead_lettered_total{{connector="{flaky_id}"}}')
    await seen(f'hookline_executor_events_total{{connector="{flaky_id}",status="failed"}}')
    await post(flaky_url, {"order_id": 2}, 200)

    executed = N_EVENTS + 3  # first + N + 2 drifted (the duplicate is not stored)
    await wait_for(lambda: len(ok.calls) >= executed, what=f"{executed} calls", timeout_s=30)
    await wait_for(lambda: len(failing.calls) >= 2 * attempts, what="retries", timeout_s=15)

    # Last: JetStream stops acknowledging, ingest answers 503 (nothing else publishes to
    # EVENTS any more: every event above has been mapped and executed).
    await block_event_store(system.settings)
    await post(shop_url, {"order_id": 9100, "name": "late"}, 503)
    await seen('hookline_ingest_requests_total{status="503"}')
    for order_id in range(9101, 9105):
        await post(shop_url, {"order_id": order_id, "name": "late"}, 503)
    return {"connectors": [shop_id, flaky_id], "shop": shop_id, "executed": executed}


# ------------------------------------------------------------------ prometheus queries


async def query(session: aiohttp.ClientSession, base: str, expr: str) -> dict[str, Any]:
    async with session.post(base + "/api/v1/query", data={"query": expr}) as r:
        body: dict[str, Any] = await r.json()
    return body


def values(body: dict[str, Any]) -> list[float]:
    if body.get("status") != "success":
        return []
    data = body["data"]
    if data["resultType"] == "vector":
        return [float(sample["value"][1]) for sample in data["result"]]
    if data["resultType"] == "scalar":
        return [float(data["result"][1])]
    return []


def problem(body: dict[str, Any]) -> str | None:
    """None when the answer has at least one real (finite) number, else why not."""
    if body.get("status") != "success":
        return f"error: {body.get('errorType')}: {body.get('error')}"
    found = values(body)
    if not found:
        return "no data"
    if not any(math.isfinite(v) for v in found):
        return f"only NaN/Inf: {found}"
    return None


@pytest.mark.timeout(60, func_only=True)
async def test_dashboards_and_alerts_on_a_real_prometheus(
    system: InProcessSystem,
    prometheus: str,
    session: aiohttp.ClientSession,
    receivers: tuple[Receiver, Receiver],
) -> None:
    started = time.monotonic()
    sent = await drive(system, prometheus, session, receivers)

    checks: dict[str, str] = {}
    for where, expr in dashboard_exprs():
        checks[where] = for_prometheus(expr, sent["connectors"])
    rules = alert_rules()
    for rule in rules:
        name = rule.get("alert") or rule["record"]
        checks[f"alerts.yml / {name}"] = signal(rule["expr"])
    assert len(checks) >= 50, f"suspiciously few expressions: {len(checks)}"

    must_alert = {"HooklineIngestErrors", "HooklineIngestStoreFailing", "HooklineDeadLetters"}
    failures: dict[str, str] = {}
    alerting: set[str] = set()

    async def all_answer() -> bool:
        failures.clear()
        answers = await asyncio.gather(*(query(session, prometheus, e) for e in checks.values()))
        for (where, expr), body in zip(checks.items(), answers, strict=True):
            why = problem(body)
            if why is not None:
                failures[where] = f"{why}\n      {expr}"
        async with session.get(prometheus + "/api/v1/alerts") as r:
            alerts = (await r.json())["data"]["alerts"]
        alerting.clear()
        alerting.update(a["labels"]["alertname"] for a in alerts)
        return not failures and must_alert <= alerting

    try:
        await wait_for(all_answer, timeout_s=DEADLINE_S, what="every expression to have data")
    except AssertionError:
        exported = await query(session, prometheus, 'count by (__name__) ({__name__=~".+"})')
        names = sorted(s["metric"]["__name__"] for s in exported["data"]["result"])
        missing = sorted(
            {m for expr in checks.values() for m in METRIC_NAME.findall(expr)} - set(names)
        )
        report = "\n".join(f"  {where}: {why}" for where, why in sorted(failures.items()))
        pytest.fail(
            f"{len(failures)} of {len(checks)} expressions returned no data:\n{report}\n"
            f"metrics used but not exported by any service: {missing}\n"
            f"alerts active: {sorted(alerting)} (expected at least {sorted(must_alert)})"
        )

    # Prometheus evaluated the real rules without error.
    async with session.get(prometheus + "/api/v1/rules") as r:
        groups = (await r.json())["data"]["groups"]
    health = {
        rule["name"]: (rule["health"], rule.get("lastError", ""))
        for group in groups
        for rule in group["rules"]
    }
    assert len(health) == len(rules)
    assert all(h == "ok" for h, _ in health.values()), health
    quiet = {"HooklineInstanceDown", "HooklineServiceMissing", "HooklineConsumerLagGrowing"}
    assert not (quiet & alerting), f"alerts firing on a healthy system: {quiet & alerting}"

    # The dashboards show real numbers, not just any data.
    shop = [sent["shop"]]
    received = values(
        await query(
            session,
            prometheus,
            for_prometheus(
                'sum(increase(hookline_ingest_requests_total{connector=~"$connector",status="200"}'
                "[$__range]))",
                shop,
            ),
        )
    )
    assert received and received[0] > 0
    raw = values(
        await query(
            session,
            prometheus,
            for_prometheus(
                'sum(hookline_executor_events_total{connector=~"$connector",status="succeeded"})',
                shop,
            ),
        )
    )
    assert raw == [float(sent["executed"])]

    # The connector variable lists the connectors that received traffic.
    variable = 'hookline_ingest_requests_total{connector!="unknown"}'
    async with session.get(
        prometheus + "/api/v1/label/connector/values", params={"match[]": variable}
    ) as r:
        listed = (await r.json())["data"]
    assert set(sent["connectors"]) <= set(listed)
    assert time.monotonic() - started < 60


# ------------------------------------------------------------------ promtool


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False)


def test_promtool_checks_rules_and_config(prometheus_bin: dict[str, str]) -> None:
    promtool = prometheus_bin["promtool"]
    for args in (("check", "rules", str(ALERTS)), ("check", "config", str(SCRAPE))):
        result = run(promtool, *args)
        assert result.returncode == 0, result.stdout + result.stderr


def firing(*alerts: str) -> list[dict[str, Any]]:
    """Expected ``ALERTS{alertstate="firing"}`` samples: 'Name{label="v",...}' strings."""
    samples = []
    for alert in alerts:
        name, _, labels = alert.partition("{")
        severity = "critical" if name in CRITICAL else "warning"
        extra = f",{labels.rstrip('}')}" if labels else ""
        samples.append(
            {
                "labels": f'ALERTS{{alertname="{name}",alertstate="firing",'
                f'severity="{severity}"{extra}}}',
                "value": 1,
            }
        )
    return samples


CRITICAL = {
    "HooklineInstanceDown",
    "HooklineServiceMissing",
    "HooklineIngestErrors",
    "HooklineIngestStoreFailing",
}


def test_alerts_fire_when_they_should(prometheus_bin: dict[str, str], tmp_path: Path) -> None:
    """``promtool test rules`` on synthetic series, one sample a minute: each alert fires
    on its condition, and stays quiet on the look-alikes (a high but steady lag, a dead
    letter older than the window)."""

    def up(job: str, instance: str, values: str) -> dict[str, str]:
        return {"series": f'up{{job="hookline-{job}",instance="{instance}"}}', "values": values}

    healthy = [up(job, f"{job}-1", "1x40") for job in ("ingest", "config", "projector", "executor")]
    series = [
        *healthy,
        up("mapper", "m1", "1 1 0x38"),  # down from minute 2
        {
            "series": 'hookline_ingest_requests_total{connector="a",status="200"}',
            "values": "0+100x40",
        },
        {
            "series": 'hookline_ingest_requests_total{connector="a",status="503"}',
            "values": "0+5x40",
        },
        {"series": "hookline_ingest_store_failures_total", "values": "0+5x40"},
        # growing: over 1000 from minute 6; steady (high or low): never
        {
            "series": 'hookline_executor_consumer_pending_messages{consumer="executor"}',
            "values": "0+200x40",
        },
        {
            "series": 'hookline_mapper_consumer_pending_messages{consumer="mapper"}',
            "values": "10x40",
        },
        {
            "series": 'hookline_config_consumer_pending_messages{consumer="projector-logs"}',
            "values": "5000x40",
        },
        # b: the series appears with its first dead letter at minute 10; c: exists, +1 at 5
        {"series": 'hookline_executor_dead_lettered_total{connector="b"}', "values": "_x10 1x30"},
        {"series": 'hookline_executor_dead_lettered_total{connector="c"}', "values": "0x4 1x35"},
    ]
    always = (
        'HooklineInstanceDown{job="hookline-mapper",instance="m1"}',
        "HooklineIngestErrors",
        "HooklineIngestStoreFailing",
    )
    tests = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": 'ALERTS{alertstate="firing"}',
                        "eval_time": "12m",
                        "exp_samples": firing(
                            *always,
                            'HooklineDeadLetters{connector="b"}',
                            'HooklineDeadLetters{connector="c"}',
                        ),
                    },
                    {
                        "expr": 'ALERTS{alertstate="firing"}',
                        "eval_time": "20m",
                        "exp_samples": firing(
                            *always,
                            'HooklineConsumerLagGrowing{consumer="executor"}',
                            'HooklineDeadLetters{connector="b"}',
                        ),
                    },
                    {"expr": 'ALERTS{alertname="HooklineDeadLetters"}', "eval_time": "26m"},
                ],
            },
            {
                "interval": "1m",
                "input_series": healthy,  # no mapper target at all
                "promql_expr_test": [
                    {
                        "expr": 'ALERTS{alertstate="firing"}',
                        "eval_time": "5m",
                        "exp_samples": firing('HooklineServiceMissing{job="hookline-mapper"}'),
                    }
                ],
            },
        ],
    }
    path = tmp_path / "alerts_test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = run(prometheus_bin["promtool"], "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# ------------------------------------------------------------------ dashboards as code


def load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("hookline_grafana", GRAFANA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dashboards_are_what_the_generator_writes() -> None:
    rendered = load_generator().render()
    assert sorted(rendered) == sorted(DASHBOARDS)
    for name, text in rendered.items():
        assert (GRAFANA / name).read_text() == text, (
            f"{name} is stale: run python deploy/grafana/generate.py"
        )


def test_dashboards_fit_the_provisioning() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    uid = datasources["datasources"][0]["uid"]
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/hookline.yaml").read_text())
    folder = providers["providers"][0]["options"]["path"]
    compose = yaml.safe_load((DEPLOY / "compose/docker-compose.yml").read_text())
    mounted = compose["services"]["grafana"]["volumes"]
    uids = set()
    for name in DASHBOARDS:
        data = json.loads((GRAFANA / name).read_text())
        uids.add(data["uid"])
        assert f"../grafana/{name}:{folder}/{name}:ro" in mounted
    assert len(uids) == len(DASHBOARDS)
    for where, panel in dashboard_panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, where
        assert all(t["datasource"]["uid"] == uid for t in panel["targets"]), where
    stats = json.loads((GRAFANA / "connector-stats.json").read_text())
    (variable,) = stats["templating"]["list"]
    assert variable["name"] == "connector"
    assert variable["query"].startswith("label_values(")
    titles = {p["title"] for _, p in dashboard_panels() if _ == "connector-stats.json"}
    assert {"Received", "Succeeded", "Failed", "Duplicates", "Rejected"} <= titles
    assert all("$connector" in e for w, e in dashboard_exprs() if w.startswith("connector-stats"))


# ------------------------------------------------------------------ deployment files, offline


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def test_yaml_lint() -> None:
    yamllint = pytest.importorskip("yamllint.cli", reason="yamllint is a dev dependency")
    config = (
        "{extends: default, rules: {line-length: {max: 140}, document-start: disable, "
        "comments: {min-spaces-from-content: 1}, truthy: {check-keys: false}}}"
    )
    files = sorted(str(p) for p in DEPLOY.rglob("*.y*ml"))
    assert len(files) >= 10
    with pytest.raises(SystemExit) as exit_:
        yamllint.run(["--strict", "-d", config, *files])
    assert exit_.value.code == 0


def test_compose_file() -> None:
    path = DEPLOY / "compose/docker-compose.yml"
    schema = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "No module named check_jsonschema" in schema.stderr:
        pytest.skip("check-jsonschema (dev dependency) is not installed")
    assert schema.returncode == 0, schema.stdout + schema.stderr

    compose = yaml.safe_load(path.read_text())
    services = compose["services"]
    nats_nodes = [f"nats{i}" for i in (1, 2, 3)]
    for node in nats_nodes:
        args = " ".join(services[node]["command"])
        assert "--jetstream" in args and f"--name={node}" in args
        assert all(f"nats://{peer}:6222" in args for peer in nats_nodes)
    conf = compose["configs"]["nats_conf"]["content"]
    assert "max_payload: 8MB" in conf and "authorization" in conf and "${NATS_PASSWORD:?" in conf
    for i in (1, 2, 3):
        assert "--replSet" in services[f"mongo{i}"]["command"]
    init = " ".join(services["mongo-init"]["command"])
    assert all(f'host: "mongo{i}:27017"' in init for i in (1, 2, 3))
    for name, module in MODULES.items():
        service = services[name]
        assert service["command"] == ["python", "-m", module]
        assert service["deploy"]["replicas"] == 2
        env = service["environment"]
        assert "replicaSet=rs0" in env["MONGO_URI"] and "w=majority" in env["MONGO_URI"]
        assert env["HOOKLINE_STREAM_REPLICAS"] == "3"
        assert env["NATS_URL"].startswith("nats://hookline:${NATS_PASSWORD:?")
        assert service["depends_on"]["mongo-init"]["condition"] == "service_completed_successfully"
    # The API and the projector run apart, each scaled on its own.
    assert services["config"]["environment"]["HOOKLINE_CONFIG_ROLES"] == "api"
    assert "HOOKLINE_CONFIG_ROLES" not in services["projector"]["environment"]
    # Prometheus scrapes ingest on its metrics port; the published port has no /metrics.
    metrics_port = services["ingest"]["environment"]["HOOKLINE_INGEST_METRICS_PORT"]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "hookline-ingest"]
    assert str(job["dns_sd_configs"][0]["port"]) == metrics_port
    assert all(metrics_port not in port for port in services["ingest"]["ports"])
    assert (path.parent / services["config"]["build"]["context"] / "Dockerfile").exists()
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (path.parent / source).exists(), volume


def test_dockerfile_runs_any_service() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    for line in lines:
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), line
    assert 'CMD ["python", "-m", "services.ingest"]' in lines
    for module in MODULES.values():
        path = ROOT.joinpath(*module.split("."))
        assert (path / "__main__.py").exists() or path.with_suffix(".py").exists(), module


def test_kubernetes_manifests() -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is a dev dependency"
    )
    folder = DEPLOY / "k8s"
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    manifests = sorted(folder / name for name in kustomization["resources"])
    on_disk = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml", "nats-values.yaml"}
    assert {p.name for p in manifests} == on_disk
    docs = [doc for path in manifests for doc in load_all(path)]
    for version in ("1.30.0", kubernetes_validate.latest_version()):
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)

    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    for name, module in MODULES.items():
        full = f"hookline-{name}"
        deployment = by_kind["Deployment"][full]
        labels = deployment["spec"]["selector"]["matchLabels"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", module]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert by_kind["PodDisruptionBudget"][full]["spec"]["selector"]["matchLabels"] == labels
        assert by_kind["Service"][full]["spec"]["selector"] == labels
        if name != "ingest":
            assert deployment["spec"]["replicas"] >= 2
        # NATS needs a password (it holds channel secrets), defined before the URL
        # that expands it (Kubernetes expands $(VAR) only from earlier entries).
        env = [e["name"] for e in container["env"]]
        assert env.index("NATS_PASSWORD") < env.index("NATS_URL"), name
        (url,) = [e["value"] for e in container["env"] if e["name"] == "NATS_URL"]
        assert url.startswith("nats://hookline:$(NATS_PASSWORD)@"), name
    roles = {
        name: {e["name"]: e.get("value") for e in container["env"]}
        for name in ("config", "projector")
        for (container,) in [
            by_kind["Deployment"][f"hookline-{name}"]["spec"]["template"]["spec"]["containers"]
        ]
    }
    assert roles["config"]["HOOKLINE_CONFIG_ROLES"] == "api"
    assert "HOOKLINE_ADMIN_TOKEN" not in roles["projector"]  # it serves no API
    ingest = by_kind["Deployment"]["hookline-ingest"]["spec"]["template"]
    (container,) = ingest["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    metrics_env = {e["name"]: e.get("value") for e in container["env"]}
    assert metrics_env["HOOKLINE_INGEST_METRICS_PORT"] == str(ports["metrics"])
    assert ingest["metadata"]["annotations"]["prometheus.io/port"] == str(ports["metrics"])
    service_ports = by_kind["Service"]["hookline-ingest"]["spec"]["ports"]
    assert ports["metrics"] not in {p.get("targetPort", p["port"]) for p in service_ports}
    assert "metrics" not in {p.get("targetPort") for p in service_ports}
    assert "NATS_URL" not in by_kind["ConfigMap"]["hookline-env"]["data"]
    hpa = by_kind["HorizontalPodAutoscaler"]["hookline-ingest"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "hookline-ingest" and hpa["minReplicas"] >= 2
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"

    values = yaml.safe_load((folder / "nats-values.yaml").read_text())
    auth = values["config"]["merge"]["authorization"]
    assert auth == {"user": "hookline", "password": "<< $NATS_PASSWORD >>"}
    secret = values["container"]["env"]["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "hookline-secrets", "key": "nats-password"}
    assert values["config"]["cluster"] == {"enabled": True, "replicas": 3}
    assert values["config"]["jetstream"]["enabled"] is True
    assert values["config"]["jetstream"]["fileStore"]["enabled"] is True
