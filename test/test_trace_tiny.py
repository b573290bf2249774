"""The embedded trace-tiny model: small, stock loading, TRACE answers through the backend."""

import pathlib

import numpy as np
from PIL import Image
import pytest
from trace_ros.backends import make_backend
from trace_ros.core.parsing import parse_answer
from trace_ros.core.prompts import build_prompt
from trace_ros.core.where2place import load_questions
from trace_ros.models import default_model_dir, MODEL_NAME, model_source

DATA = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'eval' / 'sim_w2p'
MODEL = pathlib.Path(default_model_dir())


def test_the_model_is_small_stock_and_documented():
    from transformers import AutoModelForImageTextToText, AutoProcessor
    size = sum(f.stat().st_size for f in MODEL.iterdir() if f.is_file())
    assert size <= 20e6, f'{size / 1e6:.1f} MB'
    assert 'Where2Place' in (MODEL / 'README.md').read_text()
    model = AutoModelForImageTextToText.from_pretrained(MODEL)
    assert type(model).__name__ == 'LlavaForConditionalGeneration'
    assert AutoProcessor.from_pretrained(MODEL).tokenizer.image_token == '<image>'


@pytest.fixture(scope='module')
def answers():
    """Greedy answers of the node's transformers backend to the first eval questions."""
    questions = load_questions(str(DATA))[:4]
    with make_backend('transformers', model=str(MODEL), device='cpu',
                      max_new_tokens=320) as backend:
        return [(q, backend.generate(np.asarray(Image.open(DATA / 'images' / q['image'])),
                                     build_prompt(q['text'])).text) for q in questions]


def test_answers_follow_the_chain_of_reasoning(answers):
    for question, text in answers:
        parsed = parse_answer(text, image_size=(question['width'], question['height']))
        assert parsed.ok, text
        assert parsed.goal_subtype in ('object reference', 'free space'), text
        assert len(parsed.points) >= 1 and parsed.target_area, text


def test_the_embedded_model_answers_to_its_name():
    assert model_source('') == model_source(MODEL_NAME) == str(MODEL)
    assert model_source('/models/trace-13b') == '/models/trace-13b'
    assert model_source('org/some-vlm') == 'org/some-vlm'
