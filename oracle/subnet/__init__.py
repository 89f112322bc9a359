"""The subnet: miners (separate processes with a Bittensor hotkey, serving signed HTTP) and the
validator side (``SubnetProver``), which is the oracle's dispatcher talking to them.

Modules: ``protocol`` (wire format, shared), ``auth`` (wallets, request/response signing
policy), ``miner`` (``oracle miner``), ``metagraph`` (local file / chain), ``scoring``,
``validator`` (``SubnetProver``), ``circuit_server`` (circuit folders for miners), ``local``
(spawn local miners for the demo and tests).

Nothing here is imported by the rest of the oracle unless a ``[subnet]`` section is configured,
so a plain ``oracle run`` never pays for the bittensor import.
"""
