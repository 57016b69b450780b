"""Schema versions of the records databases (SQLite and PostgreSQL), migrated when a store starts.

Each backend has a list of numbered migrations, 1, 2, ...; a ``schema_version`` table holds one
row per migration applied (its number, when, what it did). On start a store applies, in order and
each in a transaction together with its row, every migration the database has not seen yet, so
a process that dies half way leaves the database at the last whole version. A database at a
version newer than this code knows is refused (:class:`SchemaTooNew`): an older emachi must not
write into tables it does not understand.

A SQLite file made before versions existed (it has ``store_batches`` but no ``schema_version``)
is version 1: its tables are exactly migration 1's, so it is marked so and migrated on from there.

Adding a migration: append a :class:`Migration` with the next number to both lists (the same
tables in both dialects), never edit one that has shipped, and add its case to the store suite
(tests/cluster/test_store.py, ``test_*_migrates_*``).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

__all__ = [
    "Migration",
    "SchemaTooNew",
    "SQLITE",
    "POSTGRES",
    "LATEST",
    "VERSION_TABLE_SQLITE",
    "VERSION_TABLE_POSTGRES",
    "migrate_sqlite",
    "sqlite_version",
]


class SchemaTooNew(RuntimeError):
    """The records database was migrated by a newer emachi than this one."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: its number, what it does (kept in ``schema_version``), its SQL."""

    version: int
    what: str
    statements: tuple[str, ...]


VERSION_TABLE_SQLITE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY, applied REAL NOT NULL, what TEXT NOT NULL)"
)
VERSION_TABLE_POSTGRES = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now(), what text NOT NULL)"
)

SQLITE: tuple[Migration, ...] = (
    Migration(
        1,
        "records tables: batches applied, counters, values, appended records",
        (
            # exactly the tables of the first release (which created them without a version)
            "CREATE TABLE IF NOT EXISTS store_batches ("
            " id TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS store_counters ("
            " space TEXT NOT NULL, head TEXT NOT NULL, tail TEXT NOT NULL, n INTEGER NOT NULL,"
            " PRIMARY KEY (space, head, tail)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS store_values ("
            " space TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires REAL,"
            " PRIMARY KEY (space, key)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS store_records ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, id TEXT NOT NULL,"
            " data TEXT NOT NULL, UNIQUE (stream, id))",
        ),
    ),
    Migration(
        2,
        "indexes: a stream read in order, old batch ids and expired values pruned without a scan",
        (
            "CREATE INDEX IF NOT EXISTS store_records_order ON store_records (stream, seq)",
            "CREATE INDEX IF NOT EXISTS store_batches_at ON store_batches (at)",
            "CREATE INDEX IF NOT EXISTS store_values_expires ON store_values (expires)"
            " WHERE expires IS NOT NULL",
        ),
    ),
)

# Keys compare as Python compares strings (code points), whatever the database's locale: COLLATE "C".
POSTGRES: tuple[Migration, ...] = (
    Migration(
        1,
        "records tables: batches applied, counters, values, appended records",
        (
            "CREATE TABLE store_batches ("
            ' id text COLLATE "C" PRIMARY KEY, at double precision NOT NULL)',
            "CREATE TABLE store_counters ("
            ' space text COLLATE "C" NOT NULL, head text COLLATE "C" NOT NULL,'
            ' tail text COLLATE "C" NOT NULL, n bigint NOT NULL, PRIMARY KEY (space, head, tail))',
            "CREATE TABLE store_values ("
            ' space text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, value text NOT NULL,'
            " expires double precision, PRIMARY KEY (space, key))",
            "CREATE TABLE store_records ("
            " seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            ' stream text COLLATE "C" NOT NULL, id text COLLATE "C" NOT NULL, data text NOT NULL,'
            " UNIQUE (stream, id))",
        ),
    ),
    Migration(
        2,
        "indexes: a stream read in order, old batch ids and expired values pruned without a scan",
        (
            "CREATE INDEX store_records_order ON store_records (stream, seq)",
            "CREATE INDEX store_batches_at ON store_batches (at)",
            "CREATE INDEX store_values_expires ON store_values (expires) WHERE expires IS NOT NULL",
        ),
    ),
)

LATEST = len(SQLITE)
assert [m.version for m in SQLITE] == list(range(1, LATEST + 1))
assert [m.version for m in POSTGRES] == [m.version for m in SQLITE]


def too_new(found: int, where: str) -> SchemaTooNew:
    return SchemaTooNew(
        f"{where} is at schema version {found}, this emachi knows versions up to {LATEST}: "
        "run a newer emachi (or restore a backup from before the upgrade)"
    )


def sqlite_version(db: sqlite3.Connection) -> int:
    """The schema version of an open SQLite database (0: empty, 1: made before versions)."""
    has = {
        str(r[0])
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name IN ('schema_version', 'store_batches')"
        )
    }
    if "schema_version" in has:
        row = db.execute("SELECT max(version) FROM schema_version").fetchone()
        if row is not None and row[0] is not None:
            return int(row[0])
    return 1 if "store_batches" in has else 0


def migrate_sqlite(db: sqlite3.Connection, where: str = "the records file") -> tuple[int, int]:
    """Bring ``db`` (autocommit mode) to :data:`LATEST`, one transaction per migration.

    Returns:
        (the version found, the version now).

    Raises:
        SchemaTooNew: the file is newer than this code.
    """
    found = None
    while True:
        db.execute("BEGIN IMMEDIATE")  # another process migrating the same file waits here
        try:
            version = sqlite_version(db)
            found = version if found is None else found
            if version > LATEST:
                raise too_new(version, where)
            if version == LATEST:
                db.execute("COMMIT")
                return found, version
            db.execute(VERSION_TABLE_SQLITE)
            if version == 1 and not _rows(db):
                # a file of the first release: its tables are migration 1's
                db.execute(
                    "INSERT INTO schema_version (version, applied, what) VALUES (1, ?, ?)",
                    (time.time(), "found: tables made before schema versions"),
                )
            else:
                step = SQLITE[version]
                for statement in step.statements:
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_version (version, applied, what) VALUES (?, ?, ?)",
                    (step.version, time.time(), step.what),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _rows(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM schema_version").fetchone()[0])
