"""Alembic environment: runs on the connection handed over by ``oracle.store.db.migrate``
(or a URL from ``ORACLE_DB_URL`` when run from the alembic command line)."""

from __future__ import annotations

import os

from alembic import context

from oracle.store.db import make_engine
from oracle.store.models import Base

target_metadata = Base.metadata
config = context.config


def run() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(os.environ.get("ORACLE_DB_URL", "sqlite:///oracle.db"))
    with engine.begin() as c:
        context.configure(connection=c, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
