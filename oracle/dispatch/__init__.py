"""The dispatcher: confirmed requests -> proof -> off-chain verification -> relayer."""
