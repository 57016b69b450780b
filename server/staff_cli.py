"""``emachi staff add|list|remove|passwd`` and ``emachi audit verify``: run on the Store itself.

They open the records Store the server would (``--data-dir``'s SQLite file, or ``--redis URL``),
not a running server, so an administrator can add the first account before anything runs. A
running server sees an account change within ``server.accounts.POLL_SECONDS`` (a sign-in reads
the account at once). Each account change is written, in the same batch, with its record in the
staff log, under a lane of its own (``server.audit``), attributed to ``cli:<OS user>``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from server import accounts, audit
from server.config import Config
from server.store import Store, StoreAway, open_store

__all__ = ["add_arguments", "staff_main", "audit_main", "STORE_HELP"]

STORE_HELP = "the records of this data dir (default %(default)s), as 'emachi serve --data-dir'"


def add_arguments(sub: Any, defaults: Config) -> None:
    """Add the ``staff`` and ``audit`` commands to the ``emachi`` parser's subcommands."""

    def store_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, default=defaults.data_dir, help=STORE_HELP)
        p.add_argument(
            "--redis",
            metavar="URL",
            default=None,
            help="the cluster's Redis, as 'emachi serve --redis'",
        )

    staff = sub.add_parser(
        "staff",
        help="staff accounts (add, list, remove, passwd)",
        description="Staff accounts for the /staff pages: each signs in at /staff/signin with its "
        "name and password; its role says what it may do (host: events; staff: briefings, counts "
        "and the log too; admin: everything).",
    )
    ssub = staff.add_subparsers(dest="staff_command", metavar="ACTION", required=True)
    add = ssub.add_parser("add", help="add an account (asks for its password)")
    add.add_argument("name", help="1-32 letters, digits, '.', '_' or '-'")
    add.add_argument("--role", required=True, choices=["host", "staff", "admin"])
    passwd = ssub.add_parser("passwd", help="set an account's password (its sessions end)")
    passwd.add_argument("name")
    for p in (add, passwd):
        p.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input",
        )
    remove = ssub.add_parser("remove", help="remove an account (its sessions end)")
    remove.add_argument("name")
    listing = ssub.add_parser("list", help="list the accounts and their roles")
    for p in (add, passwd, remove, listing):
        store_options(p)

    log = sub.add_parser("audit", help="the staff log", description="The hash-chained staff log.")
    lsub = log.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = lsub.add_parser(
        "verify",
        help="check the whole chain; name the first record changed, removed or reordered (exit 1)",
    )
    verify.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="HASH",
        help="a head hash printed by an earlier verify: it must still be in the log (repeatable)",
    )
    store_options(verify)


def _store(args: argparse.Namespace) -> Store:
    return open_store(Config(staff_token="", data_dir=args.data_dir, redis_url=args.redis))


def _run(args: argparse.Namespace, body: Callable[[Store], Awaitable[int]]) -> int:
    async def go() -> int:
        store = _store(args)
        await store.start()
        try:
            return await body(store)
        except StoreAway as e:
            print(f"emachi: the records store does not answer: {e}", file=sys.stderr)
            return 1
        finally:
            await store.close()

    return asyncio.run(go())


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise accounts.AccountError("the two passwords differ")
    return first


async def _change(
    store: Store, op: str, name: str, account: accounts.Account | None, **data: object
) -> None:
    """Write the account change and its staff-log record in one batch."""
    lane = audit.Lane.new("cli")
    lane.last = await audit.read_head(store)
    actor = f"cli:{getpass.getuser()}"[:64]
    record = lane.next(actor, f"account.{op}", name, dict(data))
    await store.apply(accounts.change_batch(op, name, account, audit.lane_ops(record)))


def staff_main(args: argparse.Namespace) -> int:
    """``emachi staff ...``: 0 when done, 1 with the reason on standard error."""
    try:
        if args.staff_command in ("add", "passwd", "remove"):
            accounts.check_name(args.name)
        if args.staff_command == "add":
            accounts.check_role(args.role)
        password = ""
        if args.staff_command in ("add", "passwd"):
            password = accounts.check_password(_password(args))
    except accounts.AccountError as e:
        print(f"emachi: {e}", file=sys.stderr)
        return 1

    async def body(store: Store) -> int:
        cmd = args.staff_command
        if cmd == "list":
            found = await accounts.list_accounts(store)
            for a in found:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(a.changed))
                print(f"{a.name:<32} {a.role:<6} changed {when}")
            if not found:
                print("no staff accounts yet: add one with 'emachi staff add NAME --role admin'")
            return 0
        old = await accounts.load_account(store, args.name)
        if cmd == "add" and old is not None:
            print(
                f"emachi: the account {args.name!r} exists; 'emachi staff passwd' sets its password",
                file=sys.stderr,
            )
            return 1
        if cmd in ("passwd", "remove") and old is None:
            print(f"emachi: no account {args.name!r}", file=sys.stderr)
            return 1
        if cmd == "remove":
            await _change(store, "remove", args.name, None)
            print(f"removed {args.name}")
            return 0
        loop = asyncio.get_running_loop()
        hashed = await loop.run_in_executor(None, accounts.hash_password, password)
        role = args.role if cmd == "add" else old.role  # type: ignore[union-attr]
        account = accounts.Account(args.name, role, hashed, time.time())
        await _change(store, cmd, args.name, account, role=role)
        print(f"{'added' if cmd == 'add' else 'password set for'} {args.name} ({role})")
        return 0

    return _run(args, body)


def audit_main(args: argparse.Namespace) -> int:
    """``emachi audit verify``: 0 and the count when the chain holds, 1 and the first break."""

    async def body(store: Store) -> int:
        v, missing = await audit.verify(store, args.expect)
        if v.problem is not None:
            print(f"audit log: {v.problem}", file=sys.stderr)
            return 1
        if missing:
            for h in missing:
                print(
                    f"audit log: the expected record {h} is not in the log (removed or changed)",
                    file=sys.stderr,
                )
            return 1
        print(
            f"audit log: {v.count} record{'' if v.count == 1 else 's'}, the chain is intact; head {v.head or '(empty)'}"
        )
        return 0

    return _run(args, body)
