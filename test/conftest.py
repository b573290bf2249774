"""Shared fixtures: a private ROS_DOMAIN_ID per test, and helpers for ROS subprocesses."""

import fcntl
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

_DOMAIN_IDS = range(10, 101)


@pytest.fixture
def ros_domain_id(monkeypatch):
    """
    Reserve a ROS_DOMAIN_ID no other test on this machine is using, and export it.

    A lock file per id makes the reservation hold across concurrent pytest processes.
    """
    for domain_id in _DOMAIN_IDS:
        lock = open(f'/tmp/trace_ros_domain_{domain_id}.lock', 'w')
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        monkeypatch.setenv('ROS_DOMAIN_ID', str(domain_id))
        try:
            yield domain_id
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()
        return
    pytest.fail('no free ROS_DOMAIN_ID between 10 and 100')
