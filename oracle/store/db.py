"""Engine and sessions. SQLite (embedded, WAL) by default; PostgreSQL by URL. The schema is
created and upgraded by Alembic migrations at start-up.

PostgreSQL (``postgresql://user:pass@host/db``; driver psycopg 3) may be shared by several
oracle instances: transactions run at READ COMMITTED, work is handed out with row locks
(``FOR UPDATE SKIP LOCKED``) and leases, and concurrent start-ups migrate one at a time
(an advisory lock). See docs/postgres.md."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_URL = "sqlite:///oracle.db"
# pg_advisory_xact_lock key held while migrating: instances starting together upgrade in turn.
MIGRATION_LOCK_KEY = 0x6F7261636C65  # "oracle"


def normalize_url(url: str) -> str:
    """``postgres://`` and driver-less ``postgresql://`` URLs use psycopg 3 (the installed
    driver); anything else is returned unchanged."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def make_engine(url: str = DEFAULT_URL) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            # WAL: readers never block the writer; synchronous=NORMAL is durable in WAL mode
            # against process crashes (SIGKILL), which is what the crash-safety test exercises.
            # Switching a new file to WAL needs an exclusive lock and SQLite answers "database
            # is locked" at once (no busy handler) while another process holds one: retry.
            for attempt in range(300):
                try:
                    cur.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as e:
                    if "locked" not in str(e) or attempt == 299:
                        raise
                    time.sleep(0.1)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            # Take the write lock at BEGIN: no "database is locked" upgrade failures mid-way.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        # pysqlite's own transaction handling must be off for the BEGIN above to take effect.
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.isolation_level = None

        return engine
    # READ COMMITTED explicitly (whatever the server's default): every statement sees the
    # latest commits, and a FOR UPDATE that waited on a row re-checks its WHERE clause on the
    # row's newest version instead of failing with a serialization error.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, isolation_level="READ COMMITTED")


def migrate(engine: Engine) -> None:
    """Brings the schema to the newest migration (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Transactional DDL: the lock is held until the upgrade commits, so a second
            # instance starting at the same moment waits, then finds the schema at head.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def head_revision() -> str:
    """The newest migration's revision (what ``migrate`` brings a database to)."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def on_postgresql(s: Session) -> bool:
    """Whether ``s`` talks to PostgreSQL (row locks and advisory locks apply; on SQLite every
    transaction already holds the write lock)."""
    return s.get_bind().dialect.name == "postgresql"


class Database:
    """An engine plus a session factory; one per process, passed explicitly (no globals)."""

    def __init__(self, url: str = DEFAULT_URL, *, run_migrations: bool = True) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        if run_migrations:
            migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on error."""
        with self._sessions() as s, s.begin():
            yield s

    def dispose(self) -> None:
        self.engine.dispose()
