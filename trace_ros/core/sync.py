"""
Approximate-time matching of several stamped streams (colour, depth, CameraInfo).

Same semantics as message_filters.ApproximateTimeSynchronizer, for installs without it:
every input keeps its newest ``queue_size`` items; when an item arrives, the closest
items of the other inputs within ``slop`` seconds of it are combined, the set is emitted
if its stamps span less than ``slop``, and everything at or before the used stamps is
dropped so a frame is emitted once. Items no newer than the last emitted item of their
input are ignored (a late or repeated stamp never produces an older frame).
"""

import itertools
import threading
from typing import Any, Callable, Dict, List, Sequence


class ApproximateTimeSync:
    """Emit one tuple of items per set of inputs whose stamps agree within ``slop``."""

    def __init__(self, num_inputs: int, queue_size: int, slop: float,
                 callback: Callable[..., None]):
        if num_inputs < 1 or queue_size < 1 or slop < 0.0:
            raise ValueError('need num_inputs >= 1, queue_size >= 1 and slop >= 0')
        self._queues: List[Dict[float, Any]] = [{} for _ in range(num_inputs)]
        self._last_emitted = [float('-inf')] * num_inputs
        self._queue_size = queue_size
        self._slop = slop
        self._callback = callback
        self._lock = threading.Lock()

    def add(self, index: int, stamp: float, item: Any) -> None:
        """Add ``item`` stamped ``stamp`` (seconds) to input ``index``; may emit a set."""
        with self._lock:
            matched = self._add_locked(index, stamp, item)
        if matched is not None:
            self._callback(*matched)

    def _add_locked(self, index: int, stamp: float, item: Any):
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
