"""The gateway: the oracle's HTTP face (issue 13).

- ``app.create_app(ctx)``: the FastAPI app (JSON API under ``/api/v1``, ``/metrics``,
  ``/healthz``, ``/readyz``, ``/openapi.json``, ``/docs`` served from the npm
  ``swagger-ui-dist`` package), with the portal's pages mounted by ``portal.mount(app, ctx)``;
- ``schemas``: every JSON body (pydantic), shared with the portal;
- ``context.GatewayContext``: what a request handler may use (database, circuit catalog,
  read-only chain views, metrics, settings);
- ``offchain``: off-chain inferences, stored as requests of origin ``offchain`` (chain id 0) and
  proven by the same dispatcher as on-chain ones, never relayed;
- ``keys`` and ``ratelimit``: API keys (stored hashed) and a per-key token bucket kept in the
  database (so several gateways on one PostgreSQL share one limit);
- ``server``: uvicorn in a thread (``oracle run --api``) or alone (``oracle gateway serve``).

The gateway never proves, signs or sends: it reads the store and the chains, and writes only
new off-chain requests and API keys.
"""
