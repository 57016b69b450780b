"""Settings of one emachi process, from the command line or the environment."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Config", "ROOT", "CLIENT_DIR", "DEFAULT_TIME_ZONE", "time_zone"]

ROOT = Path(__file__).resolve().parent.parent
#: the web client, served at /client/
CLIENT_DIR = ROOT / "clients" / "web"
#: the city's time zone: staff pages and minutes show times in it (UTC beside, in the minutes)
DEFAULT_TIME_ZONE = "Asia/Tokyo"


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Asia/Tokyo``).

    Raises:
        ValueError: not a time zone this system knows, with what was expected.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"expected an IANA time zone name such as {DEFAULT_TIME_ZONE} or Europe/Berlin, "
            f"got {name!r}"
        ) from None


@dataclass(slots=True)
class Config:
    """Everything a running server needs to know; defaults serve one process well."""

    host: str = "127.0.0.1"
    port: int = 8080
    world: Path = ROOT / "worlds" / "machida-city-hall"
    data_dir: Path = ROOT / "var"
    capacity: int = 500
    max_instances: int = 20
    tick_rate: int = 20
    snapshot_rate: int = 20
    aoi_radius: float = 30.0
    aoi_cap: int = 64
    # refresh each viewer's interest set every N ticks, 1/N of the viewers on each tick
    interest_every: int = 2
    # over this fraction of one core (the process's CPU over the last second) the costliest
    # instance sends snapshots at half the rate, then a quarter, and keeps ticking at the full
    # rate (server/shedding.py); 0 never sheds
    shed_above: float = 0.9
    resume_window: float = 30.0
    # The output budget of one connection, over every kind of frame (snapshots, replies, chat,
    # notices, briefing state, voice), in bytes written that the kernel has not taken yet:
    # past `send_buffer_limit` the peer is behind and snapshots skip to the newest state; behind
    # for `slow_limit` seconds, or past `output_budget`, it is closed with TOO_SLOW and its TCP
    # connection reset `close_timeout` seconds later whatever it keeps sending.
    slow_limit: float = 5.0
    send_buffer_limit: int = 256 * 1024
    output_budget: int = 512 * 1024
    # seconds a peer the server closes has to take the Close before its TCP connection is reset
    close_timeout: float = 0.5
    # liveness (server/liveness.py): a connection quiet for `ping_after` seconds is pinged; one
    # silent (no message, no pong) for `silent_limit` seconds is closed with SILENT, so a peer that
    # vanished without a FIN (a phone that lost its network) is found within about 35 s
    ping_after: float = 20.0
    silent_limit: float = 30.0
    # open WebSockets from one address (an IPv6 /64), counted from the upgrade; 0: no limit.
    # Sized for a city hall's public Wi-Fi behind one NAT address.
    max_per_address: int = 50
    # Kernel send buffer of a WebSocket: bounded so that a reader that stops is seen as behind in
    # seconds, not after megabytes of stale snapshots (Linux would autotune it up to 4 MiB).
    socket_send_buffer: int = 64 * 1024
    rate_per_second: float = 60.0
    rate_burst: float = 120.0
    chat_per_10s: int = 5
    staff_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # Browser origins allowed to open /ws and call the staff and helper routes, besides this server
    # under localhost or an IP address (server.web_security): --public-url and --allow-origin.
    public_url: str | None = None
    allowed_origins: tuple[str, ...] = ()
    # POST /api/helpers/* per client address and minute (a token bucket; refused asks are not counted)
    helper_rate_per_minute: int = 30
    # SIGTERM: seconds the clients have to take their DRAINING close before they are reset; the
    # process exits right after (keep it under a second: a restart should not be felt)
    drain_seconds: float = 0.5
    # Redis URL of the cluster (``emachi serve --redis``); None: one process, nothing else to start
    redis_url: str | None = None
    # PostgreSQL URL of the records (``emachi serve --database``): what a cluster writes its
    # records to, with or without --redis; None: SQLite in the data dir (or Redis with --redis)
    database_url: str | None = None
    # seconds an instance's lease lasts unless its owner renews it (a cluster): a process that
    # dies has its instances opened again elsewhere within about this much
    lease_ttl: float = 2.5
    # signs seat reservations between the processes of a cluster; None: derived from the staff
    # token (every process of a cluster has the same one)
    cluster_secret: str | None = None
    # HTTPS and WSS served by this process (``emachi serve --tls-cert --tls-key``): browsers give
    # the microphone only to a secure context, which a phone on http://192.168.… is not
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Events (server/events/): the HMAC key of invite tokens (None: one kept in
    # DATA_DIR/invite-secret, made at the first start; give every process of a cluster the same),
    # and how long attendance records are kept after an event ends
    invite_secret: str | None = None
    attendance_retention_days: float = 90.0
    # the city's time zone (``--time-zone``, an IANA name): times on staff pages and in minutes
    time_zone: str = DEFAULT_TIME_ZONE
    # Service counters (server/counters/): the HMAC secret of the procedure service's completion
    # webhook (``--webhook-secret``; None: derived from the staff token, so one process works out
    # of the box), and a test server's switch to ignore the counters' service hours
    webhook_secret: str | None = None
    counters_always_open: bool = False

    @property
    def tz(self) -> ZoneInfo:
        """:attr:`time_zone` as a ZoneInfo (ValueError when it is not one)."""
        return time_zone(self.time_zone)

    @property
    def asset_dir(self) -> Path:
        return self.data_dir / "assets"
