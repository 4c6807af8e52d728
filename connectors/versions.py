"""Record versions that are whole numbers (``connectors.base.VersionOrder``): QuickBooks'
``SyncToken`` (a change counter) and Stripe's second a state was current at. One order for both;
they differ only in how far apart two versions must be for one to be provably the older."""

from __future__ import annotations


def _number(version: str | None) -> int | None:
    try:
        return int(version) if version else None
    except ValueError:
        return None  # not one of these versions (an older hub's, or hand-made): no order claimed


class NumberedVersions:
    """``connectors.base.VersionOrder`` of integer versions: ``a`` precedes ``b`` only when
    ``a + margin < b`` (``margin`` 0: exact, a counter; 1: Stripe's seconds, whose servers do
    not share one clock). A version that is not a number orders nothing."""

    def __init__(self, margin: int = 0) -> None:
        self.margin = margin

    def precedes(self, version: str, held: str) -> bool:
        a, b = _number(version), _number(held)
        return a is not None and b is not None and a + self.margin < b

    def latest(self, version: str, held: str) -> str:
        a, b = _number(version), _number(held)
        if a is None:
            return held
        return version if b is None or a >= b else held


__all__ = ["NumberedVersions"]
