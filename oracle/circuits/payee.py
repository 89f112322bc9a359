"""Binding the fee recipient (payee) into a Groth16 proof.

``fulfill`` credits the payee the proof names, not ``msg.sender``: a bot that copies a pending
fulfilment from the mempool and changes the payee has no valid proof, and one that copies it
unchanged pays the honest payee. The payee is a 160-bit public value, constrained in the circuit
by a bit decomposition (160 multiplications), so it cannot be changed without a new proof (a
public signal used in no constraint would be malleable in Groth16).

Placement (the manifest's ``payee`` entry, mirrored by the on-chain adapters):

* packed layout: in the spare high bits of the last output word when its values leave room for
  160 bits (``payee << shift`` added to the word; shift = values in that word * output_bits), so
  the binding costs no extra public signal; otherwise a word of its own right after the output
  words;
* one-value-per-signal layout: a signal of its own right after the outputs.
"""

from __future__ import annotations

from oracle.errors import UserError

PAYEE_BITS = 160
WORD_BITS = 253


class PayeeError(UserError, ValueError):
    """Not a 20-byte address."""


def payee_int(payee: str | None) -> int:
    """The payee as an integer (0x-hex, 20 bytes). A circuit that binds a payee needs one."""
    if payee is None:
        raise PayeeError("this circuit binds a payee: give the address the oracle will credit")
    h = payee[2:] if payee.startswith(("0x", "0X")) else payee
    if len(h) != 40:
        raise PayeeError(f"payee {payee!r} is not a 20-byte hex address")
    try:
        return int(h, 16)
    except ValueError as e:
        raise PayeeError(f"payee {payee!r} is not a 20-byte hex address") from e


def normalize(payee: str | None) -> str | None:
    return None if payee is None else "0x" + format(payee_int(payee), "040x")


def slot_for(last_word_bits: int, last_word_index: int) -> dict[str, int]:
    """Where the payee goes when the last output word (index ``last_word_index``) uses
    ``last_word_bits`` bits: its spare high bits if 160 fit, else its own signal after it."""
    if last_word_bits + PAYEE_BITS <= WORD_BITS:
        return {"signal": last_word_index, "shift": last_word_bits, "extra": 0}
    return {"signal": last_word_index + 1, "shift": 0, "extra": 1}


def place_payee(signals: list[int], slot: dict[str, int], payee: int) -> list[int]:
    if not 0 <= payee < 1 << PAYEE_BITS:
        raise PayeeError(f"payee {payee} is not a 160-bit value")
    out = list(signals)
    if slot["extra"]:
        out.insert(slot["signal"], payee)
    else:
        out[slot["signal"]] += payee << slot["shift"]
    return out


def strip_payee(signals: list[int], slot: dict[str, int]) -> list[int]:
    """``signals`` without the payee (the inverse of ``place_payee`` on the value part)."""
    out = list(signals)
    if slot["extra"]:
        del out[slot["signal"]]
    else:
        out[slot["signal"]] &= (1 << slot["shift"]) - 1
    return out
