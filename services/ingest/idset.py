"""A compact set of non-negative integer ids: one bit per possible id.

The nc release has over 20 million stops and as many persons; a Python set
of them would take gigabytes, a bitmap takes a few megabytes. Ids past
`BITMAP_LIMIT` (never seen in real releases) fall back to a plain set.

A file parsed in pieces by several processes (services/ingest/nc/piece_merge.py)
sends each piece's sets back as an `IdPart`, which is checked against and
added to the sets of the pieces before it.
"""

from __future__ import annotations

from typing import NamedTuple

BITMAP_LIMIT = 1 << 31
# Bitmaps are scanned for their set bytes a window at a time (a compare is a
# memcmp): stripping zero bytes one by one costs milliseconds per megabyte.
_WINDOW = 1 << 16
_ZEROS = bytes(_WINDOW)


class IdPart(NamedTuple):
    """The ids of an IdSet in a few bytes, to send between processes: the
    bitmap from its first set byte to its last, and the ids past it."""

    offset: int
    bits: bytes
    overflow: frozenset[int]


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

    def part(self) -> IdPart:
        bits = self._bits
        start = _first_set_byte(bits)
        end = _last_set_byte(bits) + 1 if start < len(bits) else start
        return IdPart(start, bytes(bits[start:end]), frozenset(self._overflow))

    def intersects(self, part: IdPart) -> bool:
        """Whether this set holds any id of `part`."""
        if not self._overflow.isdisjoint(part.overflow):
            return True
        mine = self._bits[part.offset:part.offset + len(part.bits)]
        return bool(int.from_bytes(mine, "little")
                    & int.from_bytes(part.bits[:len(mine)], "little"))

    def absorb(self, part: IdPart) -> None:
        """Add the ids of `part`, counting only those the set lacked."""
        added = len(part.overflow - self._overflow)
        self._overflow |= part.overflow
        if part.bits:
            end = part.offset + len(part.bits)
            bits = self.ensure(end * 8 - 1)
            held = int.from_bytes(bits[part.offset:end], "little")
            new = int.from_bytes(part.bits, "little")
            added += (new & ~held).bit_count()
            bits[part.offset:end] = (held | new).to_bytes(len(part.bits), "little")
        self.count += added


def _first_set_byte(bits: bytearray) -> int:
    for start in range(0, len(bits), _WINDOW):
        window = bits[start:start + _WINDOW]
        if window != _ZEROS[:len(window)]:
            return start + len(window) - len(window.lstrip(b"\x00"))
    return len(bits)


def _last_set_byte(bits: bytearray) -> int:
    for end in range(len(bits), 0, -_WINDOW):
        window = bits[max(0, end - _WINDOW):end]
        if window != _ZEROS[:len(window)]:
            return end - len(window) + len(window.rstrip(b"\x00")) - 1
    return -1
