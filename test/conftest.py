"""Shared fixtures: a private ROS_DOMAIN_ID per test (or module), and test-helper imports."""

import contextlib
import fcntl
import os
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
# The tests' models are tiny: one torch thread each (here and in the node processes they
# start) is as fast, and spinning OpenMP threads slow a busy 2-core machine down 100-fold.
os.environ.setdefault('OMP_NUM_THREADS', '1')

_DOMAIN_IDS = range(10, 101)


@contextlib.contextmanager
def reserved_domain_id():
    """
    Reserve a ROS_DOMAIN_ID no other test on this machine is using, and export it.

    A lock file per id makes the reservation hold across concurrent pytest processes.
    """
    for domain_id in _DOMAIN_IDS:
        lock = open(os.path.join(tempfile.gettempdir(), f'trace_ros_domain_{domain_id}.lock'), 'w')
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        previous = os.environ.get('ROS_DOMAIN_ID')
        os.environ['ROS_DOMAIN_ID'] = str(domain_id)
        try:
            yield domain_id
        finally:
            if previous is None:
                os.environ.pop('ROS_DOMAIN_ID', None)
            else:
                os.environ['ROS_DOMAIN_ID'] = previous
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()
        return
    raise RuntimeError('no free ROS_DOMAIN_ID between 10 and 100')


@pytest.fixture
def ros_domain_id():
    """Give one test a private ROS_DOMAIN_ID."""
    with reserved_domain_id() as domain_id:
        yield domain_id


@pytest.fixture(scope='module')
def module_ros_domain_id():
    """Give the tests of one module (one node process) a private ROS_DOMAIN_ID."""
    with reserved_domain_id() as domain_id:
        yield domain_id


@pytest.fixture(scope='session')
def memorized_model_dir(tmp_path_factory):
    """Build a tiny LLaVA trained to answer the node tests' instructions (REPLIES)."""
    from memorized_model import build_memorized_model, REPLIES
    from trace_ros.core.prompts import build_prompt
    replies = {build_prompt(k, style='cor'): v for k, v in REPLIES.items()}
    return build_memorized_model(tmp_path_factory.mktemp('model') / 'memorized', replies)


@pytest.fixture(scope='module')
def endless():
    """Load the tiny random model with its end token suppressed: only a stop ends it."""
    from tiny_model import eos_token_id, tiny_model_dir
    from trace_ros.backends import make_backend
    with make_backend('transformers', model=str(tiny_model_dir()), max_new_tokens=4000,
                      generation_kwargs={'suppress_tokens': [eos_token_id()]}) as loaded:
        yield loaded
