"""A compact set of non-negative integer ids: one bit per possible id.

The nc release has over 20 million stops and as many persons; a Python set
of them would take gigabytes, a bitmap takes a few megabytes. Ids past
`BITMAP_LIMIT` (never seen in real releases) fall back to a plain set.
"""

from __future__ import annotations

BITMAP_LIMIT = 1 << 31


class IdSet:
    __slots__ = ("_bits", "_overflow", "count")

    def __init__(self) -> None:
        self._bits = bytearray(1 << 20)
        self._overflow: set[int] = set()
        self.count = 0

    def add(self, value: int) -> bool:
        """Add `value`; False when it was already present."""
        if value >= BITMAP_LIMIT:
            if value in self._overflow:
                return False
            self._overflow.add(value)
            self.count += 1
            return True
        index = value >> 3
        bits = self._bits
        if index >= len(bits):
            bits.extend(bytes(max(index + 1 - len(bits), len(bits))))
        mask = 1 << (value & 7)
        if bits[index] & mask:
            return False
        bits[index] |= mask
        self.count += 1
        return True

    def ensure(self, value: int) -> bytearray:
        """Grow the bitmap to hold `value` and return it, for loops that test
        and set bits inline (a method call per row costs more than the test)."""
        index = value >> 3
        bits = self._bits
        if index >= len(bits):
            bits.extend(bytes(max(index + 1 - len(bits), len(bits))))
        return bits

    def mark(self, count: int) -> None:
        """Account for `count` bits set inline."""
        self.count += count

    def __contains__(self, value: int) -> bool:
        if value < 0:
            return False
        if value >= BITMAP_LIMIT:
            return value in self._overflow
        index = value >> 3
        return index < len(self._bits) and bool(self._bits[index] & (1 << (value & 7)))

    def __len__(self) -> int:
        return self.count
