"""Proof systems behind one interface (one class per backend)."""
