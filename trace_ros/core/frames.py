"""
The newest synchronized camera frame, and waiting for one newer than a request.

The camera side overwrites one slot (a depth-1 queue: stale frames are never served);
a request remembers the sequence number current at its arrival and is answered on the
newest frame received after it.
"""

import dataclasses
import threading
from typing import Any, Optional


@dataclasses.dataclass(frozen=True)
class FrameSlot:
    """One received frame: the raw messages (decoded only when used) and its order."""

    seq: int
    stamp: float
    color: Any
    depth: Any
    camera_info: Any


class LatestFrame:
    """Thread-safe holder of the newest frame."""

    def __init__(self):
        self._cond = threading.Condition()
        self._slot: Optional[FrameSlot] = None
        self._seq = 0

    @property
    def seq(self) -> int:
        """Sequence number of the newest frame (0 before the first)."""
        with self._cond:
            return self._seq

    def put(self, stamp: float, color, depth, camera_info) -> None:
        """Replace the newest frame and wake waiting requests."""
        with self._cond:
            self._seq += 1
            self._slot = FrameSlot(self._seq, stamp, color, depth, camera_info)
            self._cond.notify_all()

    def clear(self) -> None:
        """Drop the newest frame (the sequence number keeps counting)."""
        with self._cond:
            self._slot = None

    def newest(self) -> Optional[FrameSlot]:
        """Return the newest frame, or None before the first."""
        with self._cond:
            return self._slot

    def wait_newer(self, seq: int, timeout_s: float) -> Optional[FrameSlot]:
        """Wait up to ``timeout_s`` for a frame with sequence > ``seq``; None on timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self._slot is not None and self._slot.seq > seq,
                                timeout=timeout_s)
            if self._slot is not None and self._slot.seq > seq:
                return self._slot
            return None
