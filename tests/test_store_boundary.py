"""SQL lives in the store: outside ``oracle/store/`` the pipeline opens transactions
(``db.session()``) and hands the session to named repository functions, nothing else.

An ``ast`` check over ``oracle/``, ``listeners/``, ``relayer/``, ``scripts/`` and ``bench/``
(the tests may query the store to check it): no SQLAlchemy query
constructs imported, no ``.execute(``/``.query(``/``.scalars(``/``with_for_update``, no ORM
model class handed to a function (``s.get(Request, pk)``, ``select(Delivery)``), and no method
called on a session (a name bound by ``with ....session() as s`` or a parameter annotated
``Session``: ``s.add``, ``s.flush``, ``s.delete``, ``s.bind`` ...)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("oracle", "listeners", "relayer", "scripts", "bench")
STORE = ROOT / "oracle" / "store"

QUERY_CONSTRUCTS = frozenset({"select", "update", "insert", "delete", "text"})
QUERY_METHODS = frozenset({"execute", "query", "scalars", "scalar", "with_for_update"})
# Receivers of an ``.execute(`` that is not SQL (dotted source text -> why).
NOT_SQL = {"self.subtensor": "bittensor's Subtensor.execute (a chain extrinsic)"}


def _sources() -> Iterator[Path]:
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if STORE not in path.parents:
                yield path


def _model_names(tree: ast.Module) -> set[str]:
    """Names bound in the module to the store's ORM classes (``from oracle.store.models import ...``)."""
    from oracle.store import models

    classes = {n for n, v in vars(models).items() if isinstance(v, type) and issubclass(v, models.Base)}
    return {
        a.asname or a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "oracle.store.models"
        for a in node.names
        if a.name in classes
    }


def _session_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names holding a session in ``fn``: ``with X.session() as s`` and parameters annotated ``Session``."""
    names = {a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)
             if a.annotation is not None and ast.unparse(a.annotation).split(".")[-1].strip("'\"") == "Session"}
    for node in ast.walk(fn):
        if isinstance(node, ast.With):
            names |= {
                item.optional_vars.id for item in node.items
                if isinstance(item.context_expr, ast.Call) and isinstance(item.context_expr.func, ast.Attribute)
                and item.context_expr.func.attr == "session" and isinstance(item.optional_vars, ast.Name)
            }
    return names


def _session_uses(tree: ast.Module) -> Iterator[ast.Attribute]:
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            sessions = _session_names(fn)
            yield from (node for node in ast.walk(fn) if isinstance(node, ast.Attribute)
                        and isinstance(node.value, ast.Name) and node.value.id in sessions)


def violations(path: Path) -> list[str]:
    """Every direct use of SQL or of a session in the module at ``path``, as "file:line: what"."""
    tree = ast.parse(path.read_text(), filename=str(path))
    models = _model_names(tree)
    where = path.relative_to(ROOT) if ROOT in path.parents else path.name
    found: set[tuple[int, str]] = {
        (node.lineno, f"uses the session directly ({ast.unparse(node)})") for node in _session_uses(tree)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(node.lineno, "imports sqlalchemy") for a in node.names if a.name.split(".")[0] == "sqlalchemy"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            found |= {(node.lineno, f"imports {a.name} from {node.module}")
                      for a in node.names if a.name in QUERY_CONSTRUCTS}
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in QUERY_METHODS and ast.unparse(f.value) not in NOT_SQL:
                found.add((node.lineno, f"calls .{f.attr}("))
            if isinstance(f, ast.Name) and f.id in ("isinstance", "issubclass"):
                continue
            found |= {(node.lineno, f"passes the model {a.id} to {ast.unparse(f)}")
                      for a in node.args if isinstance(a, ast.Name) and a.id in models}
    return [f"{where}:{line}: {what}" for line, what in sorted(found)]


def test_no_sql_outside_the_store() -> None:
    found = [v for path in _sources() for v in violations(path)]
    assert not found, "SQL outside oracle/store/ (add a named function to the store):\n" + "\n".join(found)


def test_the_check_sees_each_kind_of_direct_sql(tmp_path: Path) -> None:
    """Each construct the check is meant to refuse is refused (so a clean run means something)."""
    bad = tmp_path / "probe.py"
    snippets = {
        "from sqlalchemy import select": "imports select",
        "from sqlalchemy.dialects.postgresql import insert": "imports insert",
        "import sqlalchemy as sa": "imports sqlalchemy",
        "def f(db):\n    with db.session() as s:\n        s.add(1)": "uses the session directly (s.add)",
        "def f(s: 'Session'):\n    s.flush()": "uses the session directly (s.flush)",
        "def f(q):\n    q.execute()": "calls .execute(",
        "from oracle.store.models import Request\ndef f(g):\n    g(Request, 1)": "passes the model Request",
    }
    for src, expected in snippets.items():
        bad.write_text(src + "\n")
        got = violations(bad)
        assert any(expected in v for v in got), (src, got)
    # A name is a session only where it is bound to one: a string called ``s`` elsewhere is not.
    bad.write_text("def f(db):\n    with db.session() as s:\n        pass\ndef g(s: str):\n    s.strip()\n")
    assert violations(bad) == []
