"""
Approximate-time matching of several stamped streams (colour, depth, CameraInfo).

Same semantics as message_filters.ApproximateTimeSynchronizer, for installs without it:
every input keeps its newest ``queue_size`` items; when an item arrives, the closest
items of the other inputs within ``slop`` seconds of it are combined, the set is emitted
if its stamps span less than ``slop``, and everything at or before the used stamps is
dropped so a frame is emitted once. Items no newer than the last emitted item of their
input are ignored (a late or repeated stamp never produces an older frame), unless it is
older by more than ``jump_s``: a clock that jumped back (a restarted bag or simulation, a
camera resynchronizing its clock) resets the synchronizer instead of locking it.

``StampGuard`` screens stamps before either synchronizer (this one or message_filters'):
it drops stamps too far in the future and notices backward jumps.
"""

import itertools
import threading
from typing import Any, Callable, Dict, List, Sequence


class ApproximateTimeSync:
    """Emit one tuple of items per set of inputs whose stamps agree within ``slop``."""

    def __init__(self, num_inputs: int, queue_size: int, slop: float,
                 callback: Callable[..., None], jump_s: float = 1.0):
        if num_inputs < 1 or queue_size < 1 or slop < 0.0 or jump_s <= 0.0:
            raise ValueError('need num_inputs >= 1, queue_size >= 1, slop >= 0 and jump_s > 0')
        self._num_inputs = num_inputs
        self._queue_size = queue_size
        self._slop = slop
        self._jump_s = jump_s
        self._callback = callback
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every queued item and the last emitted stamps."""
        with self._lock:
            self._queues: List[Dict[float, Any]] = [{} for _ in range(self._num_inputs)]
            self._last_emitted = [float('-inf')] * self._num_inputs

    def add(self, index: int, stamp: float, item: Any) -> None:
        """Add ``item`` stamped ``stamp`` (seconds) to input ``index``; may emit a set."""
        with self._lock:
            matched = self._add_locked(index, stamp, item)
        if matched is not None:
            self._callback(*matched)

    def _add_locked(self, index: int, stamp: float, item: Any):
        if stamp < self._last_emitted[index] - self._jump_s:  # the clock jumped back
            self._queues = [{} for _ in range(self._num_inputs)]
            self._last_emitted = [float('-inf')] * self._num_inputs
        if stamp <= self._last_emitted[index]:
            return None
        queue = self._queues[index]
        queue[stamp] = item
        while len(queue) > self._queue_size:
            del queue[min(queue)]
        if stamp not in queue:
            return None  # older than every item kept: it can never be matched
        candidates: List[Sequence[float]] = []
        for other, other_queue in enumerate(self._queues):
            if other == index:
                candidates.append([stamp])
                continue
            near = sorted((s for s in other_queue if abs(s - stamp) <= self._slop),
                          key=lambda s: abs(s - stamp))
            if not near:
                return None
            candidates.append(near)
        for stamps in itertools.product(*candidates):
            if max(stamps) - min(stamps) <= self._slop:
                items = tuple(q[s] for q, s in zip(self._queues, stamps))
                for q, used in zip(self._queues, stamps):
                    for s in [s for s in q if s <= used]:
                        del q[s]
                self._last_emitted = list(stamps)
                return items
        return None


class StampGuard:
    """
    Screen message stamps: reject those beyond ``max_future_s`` ahead of now, notice jumps.

    ``check`` returns 'future' (drop the message), 'jump' (a stamp more than ``jump_s``
    older than the newest of its input: reset the synchronizer, then add it) or 'ok'.
    """

    def __init__(self, num_inputs: int, max_future_s: float, jump_s: float = 1.0):
        self._max_future_s = max_future_s
        self._jump_s = jump_s
        self._num_inputs = num_inputs
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget the newest stamps."""
        with self._lock:
            self._newest = [float('-inf')] * self._num_inputs

    def check(self, index: int, stamp: float, now: float) -> str:
        """Classify ``stamp`` of input ``index`` against ``now`` (both in seconds)."""
        if stamp - now > self._max_future_s:
            return 'future'
        with self._lock:
            if stamp < self._newest[index] - self._jump_s:
                self._newest = [float('-inf')] * self._num_inputs
                self._newest[index] = stamp
                return 'jump'
            self._newest[index] = max(self._newest[index], stamp)
            return 'ok'
