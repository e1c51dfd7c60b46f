"""SQLite storage: the zero-dependency default, one file in DATA_DIR.

sqlite3 blocks, so every statement runs on one worker thread that owns the
connection; the event loop never waits on disk. Each primitive is a single
statement (autocommit), which SQLite runs as one write transaction, or one
explicit `BEGIN IMMEDIATE` transaction, so it is atomic across every process
that opens the same file. WAL lets readers and the
writer proceed together; busy_timeout makes a second process wait its turn
instead of failing.

Expired rows are ignored on read at once and deleted by `sweep()`, which the
store runs periodically. The file gives the space back: it is kept in
incremental auto-vacuum mode and each sweep returns up to `VACUUM_PAGES` free
pages to the file system (a file made before that mode is converted once, by a
VACUUM when it is opened).

A WAL keeps old pages until a checkpoint resets it, which on a quiet install can
take weeks (and forever after a crash): a copy of DATA_DIR plus a used link
would open the secret again. So `scrub()`, run every few seconds, deletes
expired rows and, when anything was deleted since the last run, checkpoints
with TRUNCATE: deleted rows are zeroed in the main file (secure_delete) and the
WAL is emptied, so a used secret's ciphertext is gone from every file within
seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from bot.backends.storage import RECEIPT_POINTER, Count, Taken, settle_received
from bot.errors import BackendUnavailable, OverLimit, StoreFull

T = TypeVar("T")
log = logging.getLogger(__name__)

VACUUM_PAGES = 4096  # pages one sweep gives back (16 MiB at the default 4 KiB page)
WAL_LIMIT = 4 * 1024 * 1024  # bytes the WAL keeps after a checkpoint
PROBE_BYTES = 4096  # the readiness probe's row

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires);
CREATE TABLE IF NOT EXISTS idx (
    name TEXT NOT NULL,
    member BLOB NOT NULL,
    score REAL NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (name, member)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_score ON idx (name, score);
"""

# Counters are kept as decimal text in a BLOB, as Redis keeps them, so `get` reads
# b"3" on both (bytes(3) would be three NUL bytes).
_INCR = (
    "INSERT INTO kv (key, value, expires) VALUES (?, CAST(1 AS BLOB), ?) "
    "ON CONFLICT (key) DO UPDATE SET value = CAST("
    "CASE WHEN kv.expires <= ? THEN 1 ELSE kv.value + 1 END AS BLOB), "
    "expires = CASE WHEN kv.expires <= ? THEN excluded.expires ELSE kv.expires END "
    "RETURNING value"
)


class SQLiteStorage:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._deleted = False  # since the last scrub: the WAL may hold dead pages

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise BackendUnavailable("The secret store (SQLite) is closed.")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._call, fn)
        except (sqlite3.Error, OSError) as exc:
            # OSError: DATA_DIR cannot be created (a file in the way, no permission).
            if _reason(exc) == "disk full":
                raise StoreFull("The secret store (SQLite) is full: the disk is full.") from None
            raise BackendUnavailable(
                f"The secret store (SQLite) failed: {type(exc).__name__}."
            ) from None

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = self._connect()
        return fn(self._conn)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            # Before WAL and the tables: on a new file the mode then needs no VACUUM.
            _use_incremental_vacuum(conn, self.path)
            _enable_wal(conn)
            conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
            # WAL + NORMAL: a crash may lose the last commits but never corrupts the file.
            conn.execute("PRAGMA synchronous = NORMAL")
            # Zero what is deleted: a revealed secret's ciphertext must not linger in
            # free pages, where a later copy of the file plus the link would open it.
            # Some SQLite builds do this by default; many do not.
            conn.execute("PRAGMA secure_delete = ON")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    async def put(self, key: str, value: bytes, ttl: int) -> bool:
        now = self._clock()

        def op(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "INSERT INTO kv (key, value, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "expires = excluded.expires WHERE kv.expires <= ?",
                (key, value, now + ttl, now),
            )
            return cur.rowcount == 1

        return await self._run(op)

    async def get(self, key: str) -> bytes | None:
        now = self._clock()
        row = await self._run(
            lambda c: c.execute(
                "SELECT value FROM kv WHERE key = ? AND expires > ?", (key, now)
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    async def take(self, key: str) -> bytes | None:
        now = self._clock()
        row = await self._run(
            lambda c: c.execute(
                "DELETE FROM kv WHERE key = ? AND expires > ? RETURNING value", (key, now)
            ).fetchone()
        )
        self._deleted = True
        return None if row is None else bytes(row[0])

    async def delete(self, key: str) -> bool:
        now = self._clock()
        self._deleted = True
        return await self._run(
            lambda c: c.execute(
                "DELETE FROM kv WHERE key = ? AND expires > ?", (key, now)
            ).rowcount
            == 1
        )

    async def replace(self, key: str, old: bytes, new: bytes) -> bool:
        now = self._clock()
        return await self._run(
            lambda c: c.execute(
                "UPDATE kv SET value = ? WHERE key = ? AND value = ? AND expires > ?",
                (new, key, old, now),
            ).rowcount
            == 1
        )

    async def incr(self, key: str, ttl: int) -> int:
        now = self._clock()
        row = await self._run(lambda c: c.execute(_INCR, (key, now + ttl, now, now)).fetchone())
        return int(row[0])

    async def put_all(
        self, entries: list[tuple[str, bytes, int]], *, count: Count | None = None
    ) -> bool:
        now = self._clock()

        # One transaction: the count, the check and every write.
        def op(c: sqlite3.Connection) -> str:
            with _transaction(c):
                if count is not None and _count(c, count, now) > count.limit:
                    return "over"  # the count itself is kept, as Redis keeps it
                for key, _, _ in entries:
                    if c.execute(
                        "SELECT 1 FROM kv WHERE key = ? AND expires > ?", (key, now)
                    ).fetchone():
                        return "collided"
                c.executemany(
                    "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                    [(key, value, now + ttl) for key, value, ttl in entries],
                )
                return "stored"

        outcome = await self._run(op)
        if outcome == "over":
            raise OverLimit
        return outcome == "stored"

    async def take_settle(
        self, key: str, *, other: str, receipt_prefix: str, sid: str, now: int,
        count: Count | None = None,
    ) -> Taken:
        at = self._clock()

        def op(c: sqlite3.Connection) -> Taken | None:
            with _transaction(c):
                if count is not None and _count(c, count, at) > count.limit:
                    return None
                row = c.execute(
                    "DELETE FROM kv WHERE key = ? AND expires > ? RETURNING value", (key, at)
                ).fetchone()
                if row is None:
                    found = c.execute(
                        "SELECT value FROM kv WHERE key = ? AND expires > ?", (other, at)
                    ).fetchone()
                    return Taken(None, None if found is None else bytes(found[0]))
                value = bytes(row[0])
                receipt_id = receipt_prefix + value[:RECEIPT_POINTER].hex()
                found = c.execute(
                    "SELECT value FROM kv WHERE key = ? AND expires > ?", (receipt_id, at)
                ).fetchone()
                if found is None:
                    return Taken(value)
                receipt = bytes(found[0])
                settled = settle_received(receipt, now, sid)
                if settled is not None:
                    # The take stands even if the receipt's write fails (a full disk):
                    # a stale receipt is the lesser harm, as on Redis.
                    c.execute("SAVEPOINT receipt")
                    try:
                        c.execute("UPDATE kv SET value = ? WHERE key = ?", (settled, receipt_id))
                    except sqlite3.Error:
                        c.execute("ROLLBACK TO receipt")
                        return Taken(value, None, receipt, None, unsettled=True)
                    finally:
                        c.execute("RELEASE receipt")
                return Taken(value, None, receipt, settled)

        taken = await self._run(op)
        if taken is None:
            raise OverLimit
        if taken.value is not None:
            self._deleted = True
        return taken

    async def index_add(
        self, key: str, member: bytes, score: float, ttl: int, *, keep: int = 0
    ) -> None:
        now = self._clock()

        # As in Redis, an index expires as a whole `ttl` after its last add, and
        # an expired index is gone: its old members must not come back.
        def op(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute("DELETE FROM idx WHERE name = ? AND expires <= ?", (key, now))
                c.execute(
                    "INSERT INTO idx (name, member, score, expires) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (name, member) DO UPDATE SET score = excluded.score",
                    (key, member, score, now + ttl),
                )
                c.execute("UPDATE idx SET expires = ? WHERE name = ?", (now + ttl, key))
                if keep > 0:
                    c.execute(
                        "DELETE FROM idx WHERE name = ? AND member NOT IN (SELECT member "
                        "FROM idx WHERE name = ? ORDER BY score DESC, member DESC LIMIT ?)",
                        (key, key, keep),
                    )
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise

        await self._run(op)

    async def index_range(self, key: str, limit: int) -> list[bytes]:
        now = self._clock()
        rows = await self._run(
            lambda c: c.execute(
                "SELECT member FROM idx WHERE name = ? AND expires > ? "
                "ORDER BY score DESC, member DESC LIMIT ?",
                (key, now, limit),
            ).fetchall()
        )
        return [bytes(r[0]) for r in rows]

    async def index_remove(self, key: str, member: bytes) -> bool:
        now = self._clock()
        return await self._run(
            lambda c: c.execute(
                "DELETE FROM idx WHERE name = ? AND member = ? AND expires > ?",
                (key, member, now),
            ).rowcount
            == 1
        )

    async def index_pop_due(self, key: str, until: float, limit: int) -> list[bytes]:
        now = self._clock()

        def op(c: sqlite3.Connection) -> list[bytes]:
            rows = c.execute(
                "DELETE FROM idx WHERE name = ? AND member IN (SELECT member FROM idx "
                "WHERE name = ? AND score <= ? AND expires > ? ORDER BY score LIMIT ?) "
                "RETURNING member, score",
                (key, key, until, now, limit),
            ).fetchall()
            # RETURNING follows the delete's own order; Redis answers lowest score first.
            return [bytes(r[0]) for r in sorted(rows, key=lambda r: (r[1], r[0]))]

        return await self._run(op)

    async def index_count(self, key: str, until: float) -> int:
        now = self._clock()
        row = await self._run(
            lambda c: c.execute(
                "SELECT count(*) FROM idx WHERE name = ? AND score <= ? AND expires > ?",
                (key, until, now),
            ).fetchone()
        )
        return int(row[0])

    async def sweep(self) -> int:
        """Delete expired rows; returns how many went."""
        now = self._clock()

        def op(c: sqlite3.Connection) -> int:
            gone = c.execute("DELETE FROM kv WHERE expires <= ?", (now,)).rowcount
            gone += c.execute("DELETE FROM idx WHERE expires <= ?", (now,)).rowcount
            # Free pages back to the file system (zeroed already: secure_delete).
            # executescript steps the pragma to its end; execute() would free one page.
            c.executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES});")
            return int(gone)

        return await self._run(op)

    async def scrub(self) -> None:
        """Delete expired rows, and empty the WAL when anything was deleted."""
        if await self.sweep():
            self._deleted = True
        if not self._deleted:
            return
        self._deleted = False

        def op(c: sqlite3.Connection) -> bool:
            busy, _, _ = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return bool(busy)

        if await self._run(op):
            # Another process was reading or writing: try again next time.
            self._deleted = True

    async def readiness(self) -> str | None:
        """None when the file takes a write right now (a short-lived probe row that
        is deleted again), else why not: "disk full" or "not writable"."""
        key = "probe:" + secrets.token_hex(8)
        now = self._clock()

        def op(c: sqlite3.Connection) -> None:
            # As large as a typical secret record: a file with room only for crumbs
            # cannot take a share.
            c.execute(
                "INSERT INTO kv (key, value, expires) VALUES (?, ?, ?)",
                (key, bytes(PROBE_BYTES), now + 5),
            )
            c.execute("DELETE FROM kv WHERE key = ?", (key,))

        if self._closed:
            return "not writable"
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._call, op)
        except (sqlite3.Error, OSError) as exc:
            return _reason(exc)
        return None

    async def ping(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        """Close the connection; closing again does nothing, later calls are unavailable."""
        if self._closed:
            return
        self._closed = True

        def op() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, op)
        self._executor.shutdown(wait=True)


@contextlib.contextmanager
def _transaction(c: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (taken at once: no upgrade deadlock between processes)."""
    c.execute("BEGIN IMMEDIATE")
    try:
        yield
        c.execute("COMMIT")
    except BaseException:
        if c.in_transaction:
            c.execute("ROLLBACK")
        raise


def _count(c: sqlite3.Connection, count: Count, now: float) -> int:
    """Add one to a rate-limit counter (as `incr` does), inside a transaction."""
    row = c.execute(_INCR, (count.key, now + count.ttl, now, now)).fetchone()
    return int(row[0])


_INCREMENTAL = 2  # PRAGMA auto_vacuum's answer for INCREMENTAL


def _use_incremental_vacuum(conn: sqlite3.Connection, path: Path) -> None:
    """Put the file in incremental auto-vacuum mode, so deleted rows give space back.

    A new file takes the mode at once. A file made by an older version (mode NONE)
    is rebuilt once by VACUUM, which needs as much free disk again as the file
    takes and holds the file for its duration; if that fails (another process holds
    the file, the disk is full), the app runs on as before and tries at next start.
    """
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == _INCREMENTAL:
        return
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == _INCREMENTAL:
        return  # a new, empty file
    size = path.stat().st_size if path.exists() else 0
    log.info("converting %s (%d bytes) to incremental auto-vacuum: one VACUUM", path.name, size)
    try:
        conn.execute("VACUUM")
    except sqlite3.OperationalError as exc:
        log.warning(
            "could not convert %s to incremental auto-vacuum (%s); it keeps its free "
            "pages until a later start succeeds", path.name, exc.sqlite_errorname,
        )


def _enable_wal(conn: sqlite3.Connection, patience: float = 10.0) -> None:
    """Switch the file to WAL, waiting while another process opens it too.

    SQLite answers a journal-mode change with SQLITE_BUSY at once, without the
    busy handler, while another connection holds the file: several workers that
    start together on a new file would fail without this retry.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _reason(exc: BaseException) -> str:
    """Why SQLite does not take writes, for /readyz and for StoreFull."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    ):
        return "disk full"
    return "not writable"
