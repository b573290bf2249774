"""
A seeded, bounded fuzz of trace_node over DDS from another process (see fuzz_cases.py).

Every hostile case gets a known status other than BACKEND_ERROR and never an "unexpected
error"; after every case a good request is answered OK; the node stays up.
"""

from fuzz_cases import Fuzzer
import pytest
from ros_harness import Session, STATIC_CAMERA
from test_trace_node import ask_fresh

pytestmark = pytest.mark.ros

CASES = 16


@pytest.fixture(scope='module')
def session(memorized_model_dir, module_ros_domain_id, tmp_path_factory):
    params = {'backend': 'transformers', 'model': str(memorized_model_dir), **STATIC_CAMERA,
              'max_new_tokens': 4000, 'generation_timeout': 5.0, 'max_frame_age': 1.0}
    s = Session(module_ros_domain_id, params, str(tmp_path_factory.mktemp('logs')),
                best_effort_camera=True)
    yield s
    s.close()


@pytest.mark.parametrize('seed', [1, 2])
def test_fuzz_never_breaks_the_node(session, seed):
    fuzzer = Fuzzer(session, seed, ask_fresh)
    for _ in range(CASES // 2):
        fuzzer.run_one()
        assert session.process.poll() is None, f'trace_node died after case {fuzzer.cases}'
    assert fuzzer.unexpected == []
    assert fuzzer.unanswered_good == 0, fuzzer.log
