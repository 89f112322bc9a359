"""The SQL store: requests and their state history, proofs, checkpoints, relayer
transactions and nonces, deliveries, miner scores. SQLite by default, PostgreSQL by URL.

Every query lives in ``repo`` (named functions, grouped by table); ``models.State`` says which
job owns each transition of a request."""
