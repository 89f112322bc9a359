"""Verification keys as contract constructor arguments."""

from __future__ import annotations

import json
from pathlib import Path


def _g2(p: list[list[str]]) -> list[int]:
    # snarkjs JSON writes F_p2 elements as [re, im]; EIP-197 wants (im, re).
    return [int(p[0][1]), int(p[0][0]), int(p[1][1]), int(p[1][0])]


def groth16_vk_words(vk_file: Path) -> list[int]:
    """alpha1, beta2, gamma2, delta2, IC[0..n] as the words Groth16BatchAdapter expects."""
    vk = json.loads(vk_file.read_text())
    words = [int(vk["vk_alpha_1"][0]), int(vk["vk_alpha_1"][1])]
    for key in ("vk_beta_2", "vk_gamma_2", "vk_delta_2"):
        words += _g2(vk[key])
    for ic in vk["IC"]:
        words += [int(ic[0]), int(ic[1])]
    return words
