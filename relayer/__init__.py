"""The relayer: builds, signs and sends fulfilment transactions; nonces, fees, receipts."""
