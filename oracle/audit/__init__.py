"""``oracle audit``: re-check a fulfilled request from public data (chain + circuit artifacts)."""
