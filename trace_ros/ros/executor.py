"""
An executor on which a lifecycle node can destroy its entities without crashing spin().

rclpy's MultiThreadedExecutor builds every wait set on the spinning thread from the node's
entity lists while its pool threads run callbacks. Destroying a subscription or an action
server from a callback (a lifecycle transition is a service callback) races that thread:
a waitable whose handle was destroyed after it was listed is still added to the wait set,
a subscription's handle is read after the wait set was released, and a waitable's data is
taken in a pool thread after the wait. Each raises InvalidHandle out of spin().

``SafeExecutor.defer`` hands the destruction to the spinning thread, which runs it between
two wait sets (no wait set exists and no iteration over the node's entities is suspended)
and only once no handler task of the doomed entities is pending.
"""

import collections
import threading
from typing import Callable, Iterable, Optional

from rclpy.executors import MultiThreadedExecutor


class SafeExecutor(MultiThreadedExecutor):
    """A MultiThreadedExecutor that destroys entities only at safe points of its spin loop."""

    def __init__(self, num_threads: Optional[int] = None, *, context=None):
        super().__init__(num_threads, context=context)
        self._deferred = collections.deque()
        self._deferred_lock = threading.Lock()
        self._ready = None
        self._ready_args = None

    def defer(self, action: Callable[[], None], entities: Iterable = ()) -> None:
        """Run ``action`` on the spinning thread at a safe point, after ``entities``' handlers."""
        with self._deferred_lock:
            self._deferred.append((action, frozenset(id(e) for e in entities)))
        self.wake()

    def pending_destructions(self) -> int:
        """Return how many deferred actions have not run yet."""
        with self._deferred_lock:
            return len(self._deferred)

    def _busy_ids(self) -> set:
        with self._tasks_lock:
            return {id(entity) for task, entity, _ in self._tasks
                    if entity is not None and not task.done()}

    def _run_deferred(self) -> None:
        with self._deferred_lock:
            if not self._deferred:
                return
            busy = self._busy_ids()
            ready = [item for item in self._deferred if not item[1] & busy]
            for item in ready:
                self._deferred.remove(item)
        for action, _ in ready:
            action()

    def _ready_now(self) -> bool:
        with self._deferred_lock:
            if not self._deferred:
                return False
            busy = self._busy_ids()
            return any(not item[1] & busy for item in self._deferred)

    def wait_for_ready_callbacks(self, timeout_sec=None, nodes=None, condition=lambda: False):
        """Return the next ready callback like rclpy's, running deferred actions in between."""
        args = (timeout_sec, nodes, condition)
        while True:
            if self._ready is None or self._ready_args != args:
                if self._ready is not None:
                    self._ready.close()  # releases the handles it still holds
                self._run_deferred()
                self._ready_args = args
                self._ready = self._wait_for_ready_callbacks(
                    timeout_sec, nodes, lambda: condition() or self._ready_now())
            try:
                return next(self._ready)
            except StopIteration:
                self._ready = None
            except BaseException:
                self._ready = None
                raise

    def shutdown(self, timeout_sec: Optional[float] = None, **kwargs) -> bool:
        """Stop spinning, then run what is still deferred (nothing spins any more)."""
        done = super().shutdown(timeout_sec, **kwargs)
        with self._deferred_lock:
            remaining, self._deferred = list(self._deferred), collections.deque()
        for action, _ in remaining:
            action()
        return done


def destroy_later(node, action: Callable[[], None], entities: Iterable = ()) -> bool:
    """
    Destroy entities of ``node`` safely: deferred on a SafeExecutor, at once otherwise.

    Without an executor nothing waits on them; a single-threaded executor runs callbacks
    on its spinning thread between wait sets. Returns whether the action was deferred.
    """
    executor = node.executor
    if isinstance(executor, SafeExecutor):
        executor.defer(action, entities)
        return True
    action()
    return False
