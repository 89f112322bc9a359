"""Halo2-KZG proofs through EZKL 23 (its Python API), with an EZKL-generated Solidity verifier.

``backend`` is the ``ProofBackend``; a compile (``build``) runs the steps of ``settings``
(EZKL settings, calibrated scales, the circuit), ``calibration`` (samples, registered ranges,
range probe), ``srs`` (KZG SRS and keys) and ``verifier`` (Solidity verifier, solc);
``instances`` is how EZKL writes public values and proofs; ``folder`` the circuit folder's files;
``runtime`` how EZKL itself is run (one call at a time, its cache inside the project).
"""

from oracle.proving.ezkl.backend import EzklBackend

__all__ = ["EzklBackend"]
