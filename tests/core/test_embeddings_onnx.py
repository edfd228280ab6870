"""The `local` provider on ONNX Runtime: the model exported from the shipped weights, offline; the
default int8 copy, with its own model id and vectors near the PyTorch ones; fp32 `onnx` with the
same vectors as sentence-transformers on PyTorch, and PyTorch as its fallback; no torch at run time."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from apps.core.embeddings import EmbeddingError, LocalProvider, bundled_model_path, onnx_export

ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "my dog Biscuit",
    "user preference: language en, theme dark",
    "x",
    "",
    "Ünïcödé text — with punctuation?! and emoji 🙂",
    "quarterly tax return deadline " * 80,  # past the 256-token window: truncated alike
    "a much longer sentence about the weather in Bristol, which is mostly rain in November",
]
# More kinds of text for the int8 runtime's tolerance (it moves some more than others).
VARIED = [
    *TEXTS,
    " ",
    "ERR-4471 on X9-220A",
    "SELECT * FROM users WHERE id = 7;",
    "日本語のテキストです",
    (
        "The quarterly report shows revenue rising in every region except the north, where a late "
        "harvest and two closed depots cut deliveries by a fifth; the board asked for a plan by March. "
    )
    * 6,  # a long passage, ~230 tokens
]


@pytest.fixture(scope="module")
def both() -> tuple[LocalProvider, LocalProvider]:
    onnx = LocalProvider(bundled_model_path(), 4, runtime="onnx")
    torch = LocalProvider(bundled_model_path(), 4, runtime="torch")
    return onnx, torch


def test_the_default_local_runtime_is_int8_made_ahead():
    # The suite runs on the default (pyproject's pytest env leaves SLOP_EMBEDDINGS_RUNTIME alone).
    assert settings.SLOP_EMBEDDINGS_RUNTIME == "onnx-int8"
    default = LocalProvider(bundled_model_path(), 4, runtime=settings.SLOP_EMBEDDINGS_RUNTIME)
    default.embed(["warm up"])
    assert default.runtime == "onnx-int8"
    assert default.model_id == f"local:all-MiniLM-L6-v2:{onnx_export.INT8_FORMAT}"
    made = default.load().onnx_path  # type: ignore[attr-defined]
    # Found in the environment's folder (the install step makes it), next to the fp32 graph.
    assert made.name == onnx_export.INT8_NAME and (made.parent / "model.onnx").exists()
    assert onnx_export.weights_digest(bundled_model_path()) in made.parent.name


def test_onnx_vectors_equal_the_pytorch_ones(both):
    onnx, torch = both
    # One batch of mixed lengths (padding and length-sorting in play) and each text alone.
    batched = onnx.embed(TEXTS)
    alone = [onnx.embed([text])[0] for text in TEXTS]
    reference = torch.embed(TEXTS)
    assert torch.runtime == "torch"
    for got_batched, got_alone, expected in zip(batched, alone, reference, strict=True):
        assert len(got_batched) == 384
        assert math.isclose(math.sqrt(sum(x * x for x in got_batched)), 1.0, rel_tol=1e-5)
        assert max(abs(a - b) for a, b in zip(got_batched, expected, strict=True)) < 1e-5
        assert max(abs(a - b) for a, b in zip(got_alone, expected, strict=True)) < 1e-5
    # Both runtimes mean the same vectors: one model id, so no reembed and no cache miss on a switch.
    assert onnx.model_id == torch.model_id == "local:all-MiniLM-L6-v2"


def test_pytorch_is_the_fallback_when_onnx_cannot_run(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    provider = LocalProvider(bundled_model_path(), 4, runtime="onnx")
    # No folder can hold an export (under a regular file), and none has one: ONNX is unavailable.
    with override_settings(SLOP_EMBEDDINGS_ONNX_DIR=str(blocker / "onnx")):
        vector = provider.embed(["still embedded"])[0]
    assert provider.runtime == "torch"
    assert len(vector) == 384


def test_the_export_is_an_offline_step_that_runs_once(tmp_path):
    model = bundled_model_path()
    first = onnx_export.ensure_exported(model, [tmp_path])
    made = first.stat().st_mtime_ns
    again = onnx_export.ensure_exported(model, [tmp_path / "elsewhere", tmp_path])
    assert again == first and first.stat().st_mtime_ns == made  # found, not exported again
    assert not list(first.parent.glob("*.partial"))
    assert first.stat().st_mode & 0o777 == 0o644  # the Docker build writes it as root for another user
    # What it made computes what the installed model computes.
    provider = LocalProvider(model, 4, runtime="onnx")
    with override_settings(SLOP_EMBEDDINGS_ONNX_DIR=str(tmp_path)):
        fresh = provider.embed(TEXTS[:3])
        assert provider.load().onnx_path == first  # type: ignore[attr-defined]
    installed = LocalProvider(model, 4, runtime="onnx").embed(TEXTS[:3])
    for a, b in zip(fresh, installed, strict=True):
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-6


def test_a_process_embedding_on_onnx_never_imports_torch():
    script = (
        "import sys, json, django; django.setup(); "
        "from apps.core.embeddings import embed_text, get_provider; "
        "v = embed_text('no torch here', tenant_id=1); "
        "print(json.dumps({'runtime': get_provider().runtime, 'torch': 'torch' in sys.modules, "
        "'transformers': 'transformers' in sys.modules, 'width': len(v)}))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "slop_platform.settings", "SLOP_DEBUG": "true"}
    env.pop("SLOP_EMBEDDINGS_RUNTIME", None)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"runtime": "onnx-int8", "torch": False, "transformers": False, "width": 384}


@pytest.fixture
def exported_copy(tmp_path: Path) -> Path:
    """A folder holding a copy of the installed fp32 export (so no test re-exports, or writes into
    the environment's folder)."""
    installed = LocalProvider(bundled_model_path(), 4, runtime="onnx").load().onnx_path  # type: ignore[attr-defined]
    copy = tmp_path / "onnx" / installed.parent.name
    copy.mkdir(parents=True)
    (copy / "model.onnx").write_bytes(installed.read_bytes())
    return tmp_path / "onnx"


def test_the_int8_runtime_has_its_own_model_id_and_vectors_near_the_pytorch_ones(exported_copy, both):
    fp32, torch = both
    with override_settings(SLOP_EMBEDDINGS_ONNX_DIR=str(exported_copy)):
        int8 = LocalProvider(bundled_model_path(), 4, runtime="onnx-int8")
        got = int8.embed(VARIED)
        alone = [int8.embed([text])[0] for text in VARIED]
        made = int8.load().onnx_path  # type: ignore[attr-defined]
        # Made once from the fp32 file next to it; a second process finds it.
        assert made.parent == next(exported_copy.iterdir()) and made.name == onnx_export.INT8_NAME
        assert made.stat().st_mode & 0o777 == 0o644
        stamp = made.stat().st_mtime_ns
        again = LocalProvider(bundled_model_path(), 4, runtime="onnx-int8")
        again.embed(["warm up"])
        assert again.load().onnx_path == made and made.stat().st_mtime_ns == stamp  # type: ignore[attr-defined]
    assert int8.runtime == "onnx-int8"
    # Other vectors, so another id: never mixed with (or served from the cache as) fp32 ones.
    assert int8.model_id != fp32.model_id and int8.model_id.startswith(fp32.model_id)
    # The tolerance: cosine to PyTorch's vector >= 0.98 for every text with words (measured
    # 0.981-0.996: "x" and short identifiers move most), >= 0.975 for a text of none (only its
    # [CLS]/[SEP] markers: 0.980 on this CPU), 0.985 on average (0.990). Batched or alone: the activations'
    # int8 scale is taken per forward pass, so a text's vector moves a little with its batch-mates.
    cosines = []
    for text, batched, single, reference in zip(VARIED, got, alone, torch.embed(VARIED), strict=True):
        for vector in (batched, single):
            assert len(vector) == 384
            assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-4)
            cosine = sum(a * b for a, b in zip(vector, reference, strict=True))
            assert cosine >= (0.98 if text.strip() else 0.975), (text[:40], cosine)
            cosines.append(cosine)
    assert sum(cosines) / len(cosines) >= 0.985


def test_the_int8_runtime_never_falls_back_to_other_vectors(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    provider = LocalProvider(bundled_model_path(), 4, runtime="onnx-int8")
    with (
        override_settings(SLOP_EMBEDDINGS_ONNX_DIR=str(blocker / "onnx")),
        pytest.raises(EmbeddingError) as raised,
    ):
        provider.embed(["not embedded"])
    assert raised.value.status == 503 and "onnx-int8" in str(raised.value)
    assert provider.runtime is None  # neither torch nor the fp32 graph took its place
