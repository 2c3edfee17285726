"""Seed constants shared by every module that takes a seed. Torch-free."""

from __future__ import annotations

import secrets

__all__ = ["MAX_SEED", "fresh_seed"]

MAX_SEED = 2**63 - 1
"""Largest seed alfaviz accepts: seeds are 0..2**63-1, the range numpy and torch share."""


def fresh_seed() -> int:
    """A seed in ``0..2**63-1`` from the operating system's entropy."""
    return secrets.randbits(63)
