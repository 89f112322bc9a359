"""The SQL store: requests and their state history, proofs, checkpoints, relayer
transactions and nonces, miner scores. SQLite by default, PostgreSQL by URL."""
