"""Settings: built-in defaults, overridden by the environment, overridden by an explicit mapping.

Names are fixed by design/API.md; extend, don't rename.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    admin_token: str = ""
    ingest_port: int = 8000
    config_port: int = 8080
    mapper_port: int = 8081
    executor_port: int = 8082
    # The projector's own port (metrics and health) when it runs as its own process.
    projector_port: int = 8083
    # When set, ingest serves /metrics on this port only, not on its public port: the
    # metrics name connectors and their traffic, which webhook senders need not see.
    ingest_metrics_port: int | None = None
    host: str = "127.0.0.1"
    # Reverse proxies (CIDRs, comma-separated) whose X-Forwarded-For ingest believes when
    # it checks a connector's allowed_ips; empty: the peer address is the client's.
    trusted_proxies: str = ""
    public_url: str = "http://127.0.0.1:8000"
    data_dir: str = "./var"
    nats_url: str = ""
    mongo_uri: str = ""
    # Ports of the embedded servers `make run` starts when no NATS_URL / MONGO_URI is set.
    nats_port: int = 4222
    nats_monitor_port: int = 8222
    mongo_port: int = 27017
    mongo_db: str = "hookline"
    max_body_bytes: int = 1024 * 1024
    # Stream and bucket names, overridable so tests can share one server.
    prefix: str = "hookline"
    # An outbound HTTP action may call loopback/private addresses only when allowed.
    allow_private_targets: bool = False
    log_level: str = "INFO"
    # Seconds to wait before each retry of a transiently failed event; its length + 1
    # is the number of attempts before the event is dead-lettered.
    retry_backoff: str = "1,5,30,120,600"
    # A message fetched but not settled within this time goes to another consumer
    # instance (a crashed one's work is picked up after this long).
    ack_wait_s: float = 30.0
    # The event log waits this long for an event's verdict before it shows the event as
    # received, so that the entry is written once, whole (see services/config/projector).
    log_grace_s: float = 5.0
    # Copies of each stream and of the KV buckets in a NATS cluster (3 in production).
    stream_replicas: int = 1
    # Bounded streams: when one is full, new publishes are refused (ingest answers 503,
    # so the sender retries) instead of old, maybe unprocessed, events being dropped.
    # Messages older than max_age are removed (replays read the log, not the stream).
    # JetStream reserves max_bytes of file storage per stream when it is created.
    stream_max_bytes: int = 1024**3
    stream_max_age_s: float = 7 * 24 * 3600.0
    # The event log (entries with their raw bodies, execution logs and step journal)
    # keeps an entry this many days after it was received; a connector may keep its
    # own ("retention_days").  MongoDB TTL indexes remove what is older.
    log_retention_days: float = 30.0
    # Bulk replays publish at most this many events per second (each replay job).
    bulk_replay_rate_per_s: float = 100.0
    # Which roles a config process runs: the API, the projector (event log and stats), or
    # both (one process on a laptop). A deployment runs "api" replicas and its projector
    # apart (`python -m services.config.projector_main`), so the API scales without it.
    config_roles: str = "api,projector"
    # Connectors named in metric labels; the rest are counted as "other" (every label
    # value is a time series in Prometheus).
    metrics_max_connectors: int = 200

    @property
    def backoff_schedule(self) -> list[float]:
        return [float(x) for x in self.retry_backoff.split(",") if x.strip()]

    @property
    def trusted_proxy_list(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.trusted_proxies.split(",") if c.strip())

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(role.strip() for role in self.config_roles.split(",") if role.strip())

    @property
    def stream_events(self) -> str:
        return f"{self.prefix.upper()}_EVENTS"

    @property
    def stream_logs(self) -> str:
        return f"{self.prefix.upper()}_LOGS"

    @property
    def stream_held(self) -> str:
        """Mapped events of paused connectors, waiting for resume (no max age)."""
        return f"{self.prefix.upper()}_HELD"

    @property
    def kv_connectors(self) -> str:
        return f"{self.prefix}_connectors"


_ENV: dict[str, tuple[str, type]] = {
    "HOOKLINE_ADMIN_TOKEN": ("admin_token", str),
    "HOOKLINE_INGEST_PORT": ("ingest_port", int),
    "HOOKLINE_CONFIG_PORT": ("config_port", int),
    "HOOKLINE_MAPPER_PORT": ("mapper_port", int),
    "HOOKLINE_EXECUTOR_PORT": ("executor_port", int),
    "HOOKLINE_PROJECTOR_PORT": ("projector_port", int),
    "HOOKLINE_INGEST_METRICS_PORT": ("ingest_metrics_port", int),
    "HOOKLINE_HOST": ("host", str),
    "HOOKLINE_PUBLIC_URL": ("public_url", str),
    "HOOKLINE_TRUSTED_PROXIES": ("trusted_proxies", str),
    "HOOKLINE_DATA_DIR": ("data_dir", str),
    "NATS_URL": ("nats_url", str),
    "MONGO_URI": ("mongo_uri", str),
    "HOOKLINE_NATS_PORT": ("nats_port", int),
    "HOOKLINE_NATS_MONITOR_PORT": ("nats_monitor_port", int),
    "HOOKLINE_MONGO_PORT": ("mongo_port", int),
    "HOOKLINE_MONGO_DB": ("mongo_db", str),
    "HOOKLINE_MAX_BODY_BYTES": ("max_body_bytes", int),
    "HOOKLINE_STREAM_MAX_BYTES": ("stream_max_bytes", int),
    "HOOKLINE_STREAM_MAX_AGE_S": ("stream_max_age_s", float),
    "HOOKLINE_LOG_RETENTION_DAYS": ("log_retention_days", float),
    "HOOKLINE_BULK_REPLAY_RATE_PER_S": ("bulk_replay_rate_per_s", float),
    "HOOKLINE_PREFIX": ("prefix", str),
    "HOOKLINE_ALLOW_PRIVATE_TARGETS": ("allow_private_targets", bool),
    "HOOKLINE_LOG_LEVEL": ("log_level", str),
    "HOOKLINE_RETRY_BACKOFF": ("retry_backoff", str),
    "HOOKLINE_ACK_WAIT_S": ("ack_wait_s", float),
    "HOOKLINE_STREAM_REPLICAS": ("stream_replicas", int),
    "HOOKLINE_LOG_GRACE_S": ("log_grace_s", float),
    "HOOKLINE_CONFIG_ROLES": ("config_roles", str),
    "HOOKLINE_METRICS_MAX_CONNECTORS": ("metrics_max_connectors", int),
}


def _convert(raw: str, kind: type) -> object:
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return kind(raw)


def load(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Defaults < environment < ``overrides``. Unknown override names raise TypeError."""
    source = os.environ if env is None else env
    values: dict[str, object] = {}
    for var, (name, kind) in _ENV.items():
        if var in source and source[var] != "":
            try:
                values[name] = _convert(source[var], kind)
            except ValueError as exc:
                raise ValueError(f"{var}={source[var]!r}: {exc}") from None
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def ensure_admin_token(settings: Settings) -> Settings:
    """The admin token from settings, else the one kept in the data dir, else a new one."""
    if settings.admin_token:
        return settings
    path = Path(settings.data_dir) / "admin-token"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole to a 0600 temporary file, then linked into place: the token is
        # never readable by others, never seen half-written, and of two processes
        # starting at once only one link succeeds (the other reads the winner's).
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".admin-token-")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(32) + "\n")
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    token = path.read_text().strip()
    return msgspec.structs.replace(settings, admin_token=token)
