"""The approximate-time synchronizer pairs colour, depth and CameraInfo like message_filters."""

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest
from trace_ros.core.sync import ApproximateTimeSync


def collect(num_inputs=3, queue_size=5, slop=0.01):
    out = []
    return ApproximateTimeSync(num_inputs, queue_size, slop, lambda *m: out.append(m)), out


def test_exact_stamps_emit_once():
    sync, out = collect()
    for i, name in enumerate(('rgb', 'depth', 'info')):
        sync.add(i, 1.0, name)
    assert out == [('rgb', 'depth', 'info')]
    sync.add(2, 1.0, 'info-again')
    assert len(out) == 1


def test_within_slop_matches_and_outside_does_not():
    sync, out = collect(slop=0.01)
    sync.add(0, 1.000, 'rgb')
    sync.add(1, 1.008, 'depth')
    sync.add(2, 1.030, 'info-late')
    assert out == []
    sync.add(2, 1.004, 'info')
    assert out == [('rgb', 'depth', 'info')]


def test_old_items_are_dropped_after_a_match():
    sync, out = collect()
    sync.add(0, 1.0, 'rgb1')
    sync.add(0, 2.0, 'rgb2')
    sync.add(1, 2.0, 'depth2')
    sync.add(2, 2.0, 'info2')
    assert out == [('rgb2', 'depth2', 'info2')]
    sync.add(1, 1.0, 'depth1')
    sync.add(2, 1.0, 'info1')
    assert out[-1] == ('rgb2', 'depth2', 'info2') and len(out) == 1


def test_queue_size_bounds_memory():
    sync, out = collect(queue_size=2)
    for k in range(10):
        sync.add(0, float(k), k)
    sync.add(1, 0.0, 'd')
    sync.add(2, 0.0, 'i')
    assert out == []


def test_invalid_arguments():
    with pytest.raises(ValueError):
        ApproximateTimeSync(0, 1, 0.1, print)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 50)), max_size=60))
def test_emitted_sets_respect_slop_and_are_monotonic(events):
    sync, out = collect(slop=0.02)
    for index, tick in events:
        stamp = tick * 0.01
        sync.add(index, stamp, (index, stamp))
    last = [-1.0, -1.0, -1.0]
    for combo in out:
        stamps = [s for _, s in combo]
        assert [i for i, _ in combo] == [0, 1, 2]
        assert max(stamps) - min(stamps) <= 0.02 + 1e-12
        assert all(s > prev for s, prev in zip(stamps, last)), 'a stamp was emitted twice'
        last = stamps


def test_late_or_repeated_stamps_never_give_an_older_frame():
    sync, out = collect()
    for i in range(3):
        sync.add(i, 2.0, f'new{i}')
    for i in range(3):
        sync.add(i, 1.0, f'late{i}')
    for i in range(3):
        sync.add(i, 2.0, f'again{i}')
    assert out == [('new0', 'new1', 'new2')]


def test_clock_jump_back_resets_instead_of_locking():
    sync, out = collect()
    for i in range(3):
        sync.add(i, 1000.0, f'future{i}')
    assert len(out) == 1
    for i in range(3):  # the clock jumped back an hour: still matched
        sync.add(i, 10.0, f'now{i}')
    assert out[-1] == ('now0', 'now1', 'now2')
    sync.add(0, 9.5, 'late')  # a small step back is an old frame, not a jump
    assert len(out) == 2


def test_reset_forgets_queued_items():
    sync, out = collect()
    sync.add(0, 1.0, 'rgb')
    sync.add(1, 1.0, 'depth')
    sync.reset()
    sync.add(2, 1.0, 'info')
    assert out == []


def test_stamp_guard():
    from trace_ros.core.sync import StampGuard
    guard = StampGuard(2, max_future_s=1.0, jump_s=1.0)
    assert guard.check(0, 100.5, now=100.0) == 'ok'
    assert guard.check(0, 101.5, now=100.0) == 'future'
    assert guard.check(0, 100.2, now=100.0) == 'ok'  # older than the newest, within jump_s
    assert guard.check(0, 10.0, now=10.0) == 'jump'
    assert guard.check(1, 10.0, now=10.0) == 'ok'
