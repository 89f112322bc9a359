"""``/healthz`` (the process answers) and ``/readyz`` (it can do its job: the database answers
and its schema is at this code's migration head, at least one model is served, and every
configured chain answers)."""

from __future__ import annotations

from oracle.gateway import schemas as S
from oracle.gateway.context import GatewayContext
from oracle.store import repo
from oracle.store.db import head_revision


def readiness(ctx: GatewayContext) -> S.Readiness:
    checks: list[S.HealthCheck] = []
    try:
        with ctx.db.session() as s:
            repo.ping(s)
            rev = repo.schema_revision(s)
        checks.append(S.HealthCheck(name="database", ok=True, detail="reachable"))
        head = head_revision()
        checks.append(S.HealthCheck(name="migrations", ok=rev == head,
                                    detail=f"schema at {rev}, code expects {head}"))
    except Exception as e:
        checks.append(S.HealthCheck(name="database", ok=False, detail=f"{type(e).__name__}: {e}"[:300]))
    n = len(ctx.catalog)
    checks.append(S.HealthCheck(name="models", ok=n > 0, detail=f"{n} circuit(s) under {ctx.settings.models_dir}"))
    for view in ctx.chains:
        try:
            cid = view.ping()
            checks.append(S.HealthCheck(name=f"chain:{view.name}", ok=True, detail=f"chain id {cid} answers"))
        except Exception as e:
            checks.append(S.HealthCheck(name=f"chain:{view.name}", ok=False,
                                        detail=f"{view.cfg.rpc_url}: {type(e).__name__}: {e}"[:300]))
    return S.Readiness(ready=all(c.ok for c in checks), checks=checks)
