"""
Instructions as users send them, made safe to put into a model prompt.

A user's text must never act as prompt structure: a model's special tokens (``<image>``
makes LLaVA's processor count two images for one; ``<|im_start|>`` opens a chat turn) are
removed, control characters (NUL, escape sequences) become spaces, and whitespace is
collapsed. Limits keep one instruction from occupying the model for minutes.
"""

import re
import struct
from typing import Iterable, Optional
import unicodedata

from trace_ros.core.status import PlacementError, Status

# Special tokens of common VLM tokenizers, removed even when the backend cannot list its own
# (an OpenAI-compatible server): LLaVA, Qwen2-VL / Qwen2.5-VL, Llama and SentencePiece.
COMMON_SPECIAL_TOKENS = ('<image>', '<video>', '<s>', '</s>', '<unk>', '<pad>', '<|endoftext|>',
                         '<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|vision_end|>',
                         '<|image_pad|>', '<|video_pad|>', '<|begin_of_text|>',
                         '<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>',
                         '[INST]', '[/INST]')
# Chat-template markers of the <|name|> form, whichever model defines them.
_MARKER = re.compile(r'<\|[^<>|\s]{0,64}\|>')
_SPACES = re.compile(r'\s+')
# Encapsulation ids of plain (not delimited or parameter-list) CDR: CDR BE/LE, CDR2 BE/LE.
PLAIN_ENCAPSULATIONS = (0x00, 0x01, 0x06, 0x07)


def _is_control(char: str) -> bool:
    """Control (Cc), surrogate (Cs) and line/paragraph separators; tab and newline too."""
    return unicodedata.category(char) in ('Cc', 'Cs', 'Zl', 'Zp')


def sanitize_instruction(text: str, special_tokens: Iterable[str] = ()) -> str:
    """
    Return ``text`` with control characters, special tokens and extra whitespace removed.

    ``special_tokens`` are the backend's own (added to COMMON_SPECIAL_TOKENS). Removal
    repeats until nothing changes, so ``<ima<image>ge>`` cannot rebuild a token.
    """
    tokens = sorted({t for t in (*COMMON_SPECIAL_TOKENS, *special_tokens) if t and t.strip()},
                    key=len, reverse=True)
    text = ''.join(' ' if _is_control(c) else c for c in str(text))
    while True:
        cleaned = _MARKER.sub(' ', text)
        for token in tokens:
            cleaned = cleaned.replace(token, ' ')
        if cleaned == text:
            break
        text = cleaned
    return _SPACES.sub(' ', text).strip()


def check_instruction(text: str, max_chars: int,
                      special_tokens: Iterable[str] = ()) -> str:
    """
    Return the sanitized instruction, or raise PlacementError(BAD_INSTRUCTION) saying why.

    The length limit applies to the text as received, before any work is done on it.
    """
    if len(text) > max_chars:
        raise PlacementError(Status.BAD_INSTRUCTION,
                             f'instruction is {len(text)} characters long (max_instruction_chars '
                             f'{max_chars}): send one short placement instruction')
    clean = sanitize_instruction(text, special_tokens)
    if not clean:
        what = 'empty' if not text.strip() else 'empty once control characters and model ' \
                                                'special tokens are removed'
        raise PlacementError(Status.BAD_INSTRUCTION, f'instruction is {what}')
    return clean


def check_tokens(count: Optional[int], max_tokens: int) -> None:
    """Raise PlacementError(BAD_INSTRUCTION) when ``count`` model tokens exceed the limit."""
    if count is not None and count > max_tokens:
        raise PlacementError(Status.BAD_INSTRUCTION,
                             f'instruction is {count} model tokens long (max_instruction_tokens '
                             f'{max_tokens})')


def decode_cdr_string(raw: bytes) -> Optional[str]:
    """
    Return the text of a serialized std_msgs/String, NUL characters included.

    Plain CDR and XCDR2 (little or big endian) lay a final struct of one string out alike:
    a 4-byte encapsulation header, a uint32 length counting the terminating NUL, the bytes.
    Invalid UTF-8 becomes U+FFFD. Another encapsulation or a malformed message gives None.
    """
    if len(raw) < 8 or raw[0] != 0 or raw[1] not in PLAIN_ENCAPSULATIONS:
        return None
    (length,) = struct.unpack('<I' if raw[1] & 1 else '>I', raw[4:8])
    if 8 + length > len(raw):
        return None
    data = bytes(raw[8:8 + length])
    if data.endswith(b'\0'):
        data = data[:-1]
    return data.decode('utf-8', errors='replace')
