"""
Instructions waiting for the model, and the worker thread that answers them one by one.

The queue holds at most ``capacity`` waiting requests, counting reservations: an action
goal reserves its place when it is accepted (goal_callback) and fills it when it executes,
so a goal is never accepted into a full queue. Stopping the queue cancels the request in
progress and hands back those still waiting, so each gets an answer.
"""

import collections
import dataclasses
import threading
from typing import Any, Callable, List, Optional

from std_msgs.msg import Header


@dataclasses.dataclass(eq=False)
class Request:
    """One instruction waiting for (or being answered by) the worker."""

    instruction: str
    arrival_seq: int
    arrival: float
    explicit: Optional[tuple] = None
    on_text: Optional[Callable[[str], None]] = None
    on_done: Optional[Callable[['Request'], None]] = None
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    header: Optional[Header] = None
    text: str = ''
    result: Any = None
    attention_inputs: Optional[tuple] = None
    num_points: int = 0  # 0: the num_points parameter
    footprint_radius: float = 0.0  # 0: the footprint_radius parameter


class RequestQueue:
    """A bounded FIFO of requests with reservations, answered by one worker thread."""

    def __init__(self, capacity: int, answer: Callable[[Request], None]):
        self.capacity = capacity
        self._answer = answer
        self._cond = threading.Condition()
        self._waiting = collections.deque()
        self._reserved = 0
        self._open = True
        self._current: Optional[Request] = None
        self._worker = threading.Thread(target=self._work, name='trace_worker', daemon=True)
        self._worker.start()

    def reserve(self) -> bool:
        """Reserve a place for a request submitted later; False when full or stopped."""
        with self._cond:
            if not self._open or len(self._waiting) + self._reserved >= self.capacity:
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        """Give back a reservation that will not be filled."""
        with self._cond:
            self._reserved = max(0, self._reserved - 1)

    def submit(self, request: Request, reserved: bool = False) -> bool:
        """Queue ``request`` (in its reserved place); False when full or stopped."""
        with self._cond:
            if reserved:
                self._reserved = max(0, self._reserved - 1)
            elif len(self._waiting) + self._reserved >= self.capacity:
                return False
            if not self._open:
                return False
            self._waiting.append(request)
            self._cond.notify()
            return True

    def stop(self, join_s: float) -> List[Request]:
        """Stop taking requests, cancel the one in progress; return those still waiting."""
        with self._cond:
            self._open = False
            waiting, self._waiting = list(self._waiting), collections.deque()
            if self._current is not None:
                self._current.cancel.set()
            self._cond.notify_all()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout=join_s)
        return waiting

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting or not self._open)
                if not self._waiting:
                    return
                request = self._current = self._waiting.popleft()
            try:
                self._answer(request)
            finally:
                with self._cond:
                    self._current = None
