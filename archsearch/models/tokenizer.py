"""The CLIP BPE tokenizer every tower here is built for (49,408 tokens), from open_clip.

open_clip ships the BPE vocabulary inside its wheel, so this never touches the network.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import torch
from open_clip.tokenizer import SimpleTokenizer


@lru_cache(maxsize=None)
def get_tokenizer(context_length: int = 77) -> SimpleTokenizer:
    """open_clip's CLIP tokenizer, padding/truncating to `context_length`; cached because loading
    the BPE merges takes about a second."""
    return SimpleTokenizer(context_length=context_length)


def tokenize(texts: str | Sequence[str], context_length: int = 77) -> torch.LongTensor:
    """``[len(texts), context_length]`` token ids: start token, BPE tokens, end-of-text token (the
    largest id in each row, which the text tower pools on), zero padding."""
    return get_tokenizer(context_length)(texts if isinstance(texts, str) else list(texts))
