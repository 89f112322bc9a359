"""The subnet: miners (separate processes with a Bittensor hotkey, serving signed HTTP) and the
validator side (``SubnetProver``), which is the oracle's dispatcher talking to them.

Modules: ``protocol`` (wire format, shared), ``auth`` (wallets, request/response signing
policy), ``miner`` (``oracle miner``: ``miner.app`` the HTTP app, ``miner.cli`` its command
line), ``server`` (a uvicorn server in a thread), ``metagraph`` (local file / chain), ``scoring``,
``validator`` (``SubnetProver``), ``circuits`` (circuit folders for miners), ``local``
(spawn local miners for the demo and tests). What an unauthenticated peer can make these HTTP
servers hold is bounded by ``oracle.http_limits``, shared with the gateway.

Nothing here is imported by the rest of the oracle unless a ``[subnet]`` section is configured,
so a plain ``oracle run`` never pays for the bittensor import.
"""
