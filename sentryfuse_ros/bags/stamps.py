"""Header stamps inside serialized CDR, read and rewritten without deserializing.

A message that starts with a std_msgs/Header (or is one) carries its stamp as int32 sec and
uint32 nanosec right after the 4-byte encapsulation header, in the byte order the
encapsulation names (XCDR1 and XCDR2 final types alike: no alignment before the first field).
"""

from __future__ import annotations

import struct

NS_PER_S = 1_000_000_000
# Encapsulation ids (byte 1; byte 0 is 0): CDR_BE, CDR_LE, CDR2_BE, CDR2_LE.
_BIG, _LITTLE = {0x00, 0x06}, {0x01, 0x07}
_LE, _BE = struct.Struct("<iI"), struct.Struct(">iI")


def _layout(data: bytes) -> struct.Struct | None:
    if len(data) < 12 or data[0] != 0:
        return None
    if data[1] in _LITTLE:
        return _LE
    if data[1] in _BIG:
        return _BE
    return None


def read_stamp(data: bytes) -> int | None:
    """The leading stamp in ns; None if the encapsulation is not one this module knows."""
    layout = _layout(data)
    if layout is None:
        return None
    sec, nanosec = layout.unpack_from(data, 4)
    return sec * NS_PER_S + nanosec


def with_stamp(data: bytes, stamp_ns: int) -> bytes:
    """`data` with its leading stamp replaced (every other byte kept)."""
    layout = _layout(data)
    if layout is None:
        return data
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return data[:4] + layout.pack(sec, nanosec) + data[12:]
