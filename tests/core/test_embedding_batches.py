"""The local ONNX encoder cuts its input into forward passes by rows and by padded tokens: long
passages go a few at a time (cheaper per text on this CPU), short texts many at a time, and the
vectors are the same whatever the cut."""

from __future__ import annotations

import pytest

from apps.core.embeddings import LocalProvider, bundled_model_path
from apps.core.embeddings.local import BATCH_TOKENS, token_batches


def test_batches_hold_every_row_once_within_both_limits():
    lengths = [300, 250, 140, 140, 140, 140, 140, 140, 140, 140, 30, 20, 20, 12, 12, 5] + [8] * 200
    order = sorted(range(len(lengths)), key=lambda index: -lengths[index])
    batches = token_batches(order, lengths, 32)
    assert [index for batch in batches for index in batch] == order
    for batch in batches:
        assert len(batch) <= 32
        assert len(batch) == 1 or len(batch) * lengths[batch[0]] <= BATCH_TOKENS
    assert len(batches[0]) == max(1, BATCH_TOKENS // 300)  # the longest rows go a few at a time
    assert max(len(batch) for batch in batches) == 32  # short texts fill whole batches
    # A row longer than the budget still goes, alone.
    assert token_batches([0], [BATCH_TOKENS * 2], 32) == [[0]]


@pytest.fixture(scope="module")
def onnx() -> LocalProvider:
    provider = LocalProvider(bundled_model_path(), 32, runtime="onnx")
    provider.embed(["warm up"])
    assert provider.runtime == "onnx"
    return provider


def test_vectors_do_not_depend_on_how_the_input_is_cut(onnx):
    passage = "The volcano erupted and lava flowed down the basalt slopes towards the river. " * 9
    texts = [passage, "short note", passage[:300], "theme dark", passage[:120], "x"] * 4
    together = onnx.embed(texts)
    alone = [onnx.embed([text])[0] for text in texts[:6]]
    for got, expected in zip(together[:6], alone, strict=True):
        assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) < 1e-5
