"""The ``emachi`` command: serve, check worlds, build and check assets, render briefings, staff
accounts and the staff log."""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
from pathlib import Path

from server.config import Config

__all__ = ["main", "build_parser", "tls_context"]

_DEFAULTS = Config(staff_token="")
#: seconds HTTP requests still running after the drain get before they are cancelled
SHUTDOWN_TIMEOUT = 0.2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emachi",
        description="emachi: a virtual city hall in the browser. Residents walk the hall, talk to "
        "people near them and open online procedures from kiosks; staff give narrated briefings.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser(
        "serve",
        help="start the server (one process, nothing else to start)",
        description="Serve the web client, the world, /ws, /healthz and /metrics on one port.",
    )
    serve.add_argument(
        "--host", default=_DEFAULTS.host, help="address to listen on (default %(default)s)"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=_DEFAULTS.port,
        help="port (default %(default)s; 0 picks a free one)",
    )
    serve.add_argument(
        "--world",
        type=Path,
        default=_DEFAULTS.world,
        help="world folder or world.toml (default: the Machida city hall)",
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=_DEFAULTS.data_dir,
        help="records and rendered assets (default %(default)s)",
    )
    serve.add_argument(
        "--capacity",
        type=int,
        default=_DEFAULTS.capacity,
        help="avatars per instance (default %(default)s)",
    )
    serve.add_argument(
        "--max-instances",
        type=int,
        default=_DEFAULTS.max_instances,
        help="instances of the world in this process (default %(default)s)",
    )
    serve.add_argument(
        "--tick-rate",
        type=int,
        default=_DEFAULTS.tick_rate,
        help="simulation ticks per second (default %(default)s)",
    )
    serve.add_argument(
        "--snapshot-rate",
        type=int,
        default=_DEFAULTS.snapshot_rate,
        help="snapshots per second to each client (default %(default)s)",
    )
    serve.add_argument(
        "--shed-above",
        type=float,
        default=_DEFAULTS.shed_above,
        metavar="CORES",
        help="over this fraction of one core the busiest instance halves its snapshot rate "
        "(then again) and keeps ticking at the full rate; 0 never sheds (default %(default)s)",
    )
    serve.add_argument(
        "--staff-token",
        default=None,
        help="token for /staff routes (default: $EMACHI_STAFF_TOKEN, else a random one printed at start)",
    )
    serve.add_argument(
        "--public-url",
        metavar="URL",
        default=None,
        help="the address residents open (e.g. https://hall.example.jp): its origin may open /ws and "
        "call the staff and helper routes; without it only http://localhost:PORT and IP addresses "
        "of this server are allowed (a DNS name is never trusted from the Host header)",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="another browser origin allowed like --public-url (repeatable)",
    )
    serve.add_argument(
        "--webhook-secret",
        default=None,
        metavar="SECRET",
        help="HMAC secret of POST /api/procedures/completed (default: derived from the staff token)",
    )
    serve.add_argument(
        "--counters-always-open",
        action="store_true",
        help="serve at the counters whatever their hours say (demos and tests)",
    )
    serve.add_argument(
        "--helper-rate",
        type=int,
        default=_DEFAULTS.helper_rate_per_minute,
        metavar="N",
        help="POST /api/helpers/* per client address and minute (default %(default)s)",
    )
    serve.add_argument(
        "--max-per-address",
        type=int,
        default=_DEFAULTS.max_per_address,
        metavar="N",
        help="open WebSockets allowed from one address (IPv6: one /64); the next is closed with a "
        "reason (default %(default)s, for a public Wi-Fi behind one NAT address; 0: no limit; "
        "behind a reverse proxy every client shares the proxy's address, so raise it or use 0)",
    )
    serve.add_argument(
        "--redis",
        metavar="URL",
        default=None,
        help="join a cluster through Redis at URL (e.g. redis://127.0.0.1:6379/0): processes started "
        "with the same URL share briefings, presence and counts; without it one process serves alone "
        "(see docs/cluster.md)",
    )
    serve.add_argument(
        "--database",
        metavar="URL",
        default=None,
        help="keep records (counts, attendance, logs) in PostgreSQL at URL "
        "(postgresql://USER:PASSWORD@HOST:5432/DATABASE), shared by every process that names it: "
        "what a cluster uses, with --redis too; the schema is migrated at start. Without it: "
        "SQLite in --data-dir, or Redis with --redis (see docs/cluster.md)",
    )
    serve.add_argument(
        "--cluster-secret",
        metavar="SECRET",
        default=None,
        help="signs the seat reservations one process of a cluster gives a client it redirects to "
        "another (default: $EMACHI_CLUSTER_SECRET, else derived from the staff token; every process "
        "of a cluster needs the same)",
    )
    serve.add_argument(
        "--lease-ttl",
        type=float,
        default=_DEFAULTS.lease_ttl,
        metavar="SECONDS",
        help="a cluster: how long an instance's lease lasts unless renewed; a process that dies has "
        "its instances opened again elsewhere within about this much (default %(default)s)",
    )
    serve.add_argument(
        "--tls-cert",
        type=Path,
        default=None,
        metavar="FILE",
        help="serve HTTPS and WSS with this certificate (PEM, with its chain); needs --tls-key. Browsers allow the microphone only on https:// or http://localhost",
    )
    serve.add_argument(
        "--tls-key",
        type=Path,
        default=None,
        metavar="FILE",
        help="the private key (PEM) of --tls-cert",
    )
    serve.add_argument(
        "--time-zone",
        default=_DEFAULTS.time_zone,
        metavar="ZONE",
        help="the city's time zone, an IANA name: times on staff pages and in the minutes (default %(default)s)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="default %(default)s",
    )
    serve.add_argument(
        "--event-loop",
        default="uvloop",
        choices=["uvloop", "asyncio"],
        help="uvloop (libuv: about a tenth less CPU and a shorter latency tail under a crowd, see "
        "the README's figures) or Python's own asyncio loop (default %(default)s)",
    )

    world = sub.add_parser("world", help="world files", description="Work with world files.")
    wsub = world.add_subparsers(dest="world_command", metavar="ACTION", required=True)
    check = wsub.add_parser(
        "check",
        help="validate every data file of a world folder (the world, the catalog, the helpers' data, "
        "the asset manifest) and list every problem with its file and place",
    )
    check.add_argument("path", type=Path, help="world folder or world.toml")

    assets = sub.add_parser(
        "assets", help="asset manifest", description="Build and verify the asset manifest."
    )
    asub = assets.add_subparsers(dest="assets_command", metavar="ACTION", required=True)
    abuild = asub.add_parser("build", help="hash every asset and write the manifest")
    acheck = asub.add_parser(
        "check",
        help="verify every asset against its hash, and that every asset a world refers to exists",
    )
    for p in (abuild, acheck):
        p.add_argument(
            "worlds", nargs="*", help="world names under --worlds-dir (default: every world)"
        )
        p.add_argument(
            "--worlds-dir", type=Path, default=_DEFAULTS.world.parent, help="default: %(default)s"
        )
    acheck.add_argument(
        "--data-dir",
        type=Path,
        default=_DEFAULTS.data_dir,
        help="the runtime store DATA_DIR/assets is checked too (default %(default)s)",
    )

    briefing = sub.add_parser(
        "briefing", help="briefing scripts", description="Render and check briefing scripts."
    )
    bsub = briefing.add_subparsers(dest="briefing_command", metavar="ACTION", required=True)
    render = bsub.add_parser(
        "render", help="synthesize every segment of a script (cached by content)"
    )
    render.add_argument("script", type=Path, help="briefing script (YAML)")
    render.add_argument(
        "--data-dir",
        type=Path,
        default=_DEFAULTS.data_dir,
        help="where rendered assets go (default %(default)s)",
    )
    bcheck = bsub.add_parser(
        "check", help="validate a script and list every problem with its place"
    )
    bcheck.add_argument("script", type=Path)

    from server import staff_cli

    staff_cli.add_arguments(sub, _DEFAULTS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "world":
        return _world_check(args.path)
    if args.command == "assets":
        from assets_manifest import cli as assets_cli

        argv_assets = [*args.worlds, "--worlds-dir", str(args.worlds_dir)]
        if args.assets_command == "build":
            return assets_cli.build_main(argv_assets)
        return assets_cli.check_main([*argv_assets, "--store", str(args.data_dir / "assets")])
    if args.command == "briefing":
        from server.briefing import cli as briefing_cli

        return briefing_cli.main(args)
    if args.command in ("staff", "audit"):
        from server import staff_cli

        return staff_cli.staff_main(args) if args.command == "staff" else staff_cli.audit_main(args)
    return 2


def _world_check(path: Path) -> int:
    """Every data file of the world folder, with the loaders ``serve`` uses (server.kiosk.check)."""
    from server.kiosk.check import problems, summary

    found, service = problems(path)
    for p in found:
        print(p)
    if found or service is None:
        print(f"{len(found)} problem(s) in {path}", file=sys.stderr)
        return 1
    print(f"{path}: {summary(service)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import contextlib
    import logging
    import socket

    from aiohttp import web

    from server import logs
    from server.app import create_app
    from server.errors import LoadError
    from server.keys import WORLD

    logs.configure(args.log_level)
    token = args.staff_token or os.environ.get("EMACHI_STAFF_TOKEN") or ""
    config = Config(
        host=args.host,
        port=args.port,
        world=args.world,
        data_dir=args.data_dir,
        capacity=args.capacity,
        max_instances=args.max_instances,
        tick_rate=args.tick_rate,
        snapshot_rate=args.snapshot_rate,
        shed_above=args.shed_above,
        public_url=args.public_url,
        allowed_origins=tuple(args.allow_origin),
        helper_rate_per_minute=args.helper_rate,
        webhook_secret=args.webhook_secret,
        counters_always_open=args.counters_always_open,
        max_per_address=args.max_per_address,
        redis_url=args.redis,
        database_url=args.database,
        lease_ttl=args.lease_ttl,
        cluster_secret=args.cluster_secret or os.environ.get("EMACHI_CLUSTER_SECRET") or None,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        time_zone=args.time_zone,
    )
    try:
        config.tz  # noqa: B018 - refused at start, in one line, not at the first minutes
    except ValueError as exc:
        print(f"emachi: --time-zone: {exc}", file=sys.stderr)
        return 1
    try:
        ssl_context = tls_context(config)
    except ValueError as exc:
        print(f"emachi: {exc}", file=sys.stderr)
        return 1
    if config.redis_url is not None:
        from server.cluster import check_redis

        problem = asyncio.run(check_redis(config.redis_url))
        if problem is not None:
            print(f"emachi: {problem}", file=sys.stderr)
            return 1
    if config.database_url is not None:
        from server.store.postgres import check_database

        problem = asyncio.run(check_database(config.database_url))
        if problem is not None:
            print(f"emachi: {problem}", file=sys.stderr)
            return 1
    if token:
        config.staff_token = token
    try:
        app = create_app(config)
    except LoadError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 1
    # bind first so that port 0 can be reported before serving
    try:
        sock = socket.create_server((config.host, config.port))
    except OSError as exc:
        print(
            f"emachi: cannot listen on {config.host}:{config.port}: {exc.strerror}", file=sys.stderr
        )
        return 1
    host, port = sock.getsockname()[:2]
    config.port = port  # the cluster directory tells the others where this process serves
    scheme = "https" if ssl_context is not None else "http"
    print(f"emachi: serving {app[WORLD].id} on {scheme}://{host}:{port}/", flush=True)
    if not token:
        print(f"emachi: staff token for this run: {config.staff_token}", flush=True)
    if not config.public_url and not config.allowed_origins:
        print(
            "emachi: browsers are accepted on localhost and this host's IP addresses; behind a DNS "
            "name start with --public-url https://NAME",
            flush=True,
        )
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        # the drain (on_shutdown) has already closed or reset every WebSocket; what is left is
        # plain HTTP requests, which had the drain's time too
        web.run_app(
            app,
            loop=_event_loop(args.event_loop),
            sock=sock,
            ssl_context=ssl_context,
            print=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            handle_signals=True,
        )
    # The app's cleanup has closed everything that must last (stores, the cluster's keys). The
    # interpreter's own teardown (freeing every module and array) then takes 0.2-0.8 s on a busy
    # machine, which a SIGTERM restart should not wait for: leave without it.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A new event loop of ``kind`` (``uvloop`` or ``asyncio``) for the server to run on."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context from ``--tls-cert``/``--tls-key``, or None for plain HTTP.

    Raises:
        ValueError: only one of the two given, or they do not load (the message says which).
    """
    if config.tls_cert is None and config.tls_key is None:
        return None
    if config.tls_cert is None or config.tls_key is None:
        raise ValueError("--tls-cert and --tls-key go together")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(config.tls_cert, config.tls_key)
    except FileNotFoundError as exc:
        raise ValueError(f"cannot read {exc.filename}") from None
    except ssl.SSLError as exc:
        raise ValueError(
            f"{config.tls_cert} and {config.tls_key}: not a PEM certificate and its key ({exc.reason})"
        ) from None
    return ctx


if __name__ == "__main__":
    raise SystemExit(main())
