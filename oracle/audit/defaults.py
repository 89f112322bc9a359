"""Audit defaults, importable without web3 (the CLI parser is built on every ``oracle`` call)."""

# Blocks per eth_getLogs: the common provider limit (the listener uses the same).
DEFAULT_MAX_RANGE = 2_000
# Gas for the verify eth_call. docs/toolchain.md: eth_estimateGas on a snarkjs verifier yields ~32 k,
# at which the pairing precompile fails and verifyProof returns false. Never let the node pick.
DEFAULT_VERIFY_GAS = 5_000_000
