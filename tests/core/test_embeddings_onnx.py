"""The `local` provider on ONNX Runtime: the model exported from the shipped weights, offline; the
same vectors as sentence-transformers on PyTorch; PyTorch as the fallback; no torch at run time;
the opt-in int8 copy with its own model id."""

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


@pytest.fixture(scope="module")
def both() -> tuple[LocalProvider, LocalProvider]:
    onnx = LocalProvider(bundled_model_path(), 4, runtime="onnx")
    torch = LocalProvider(bundled_model_path(), 4, runtime="torch")
    return onnx, torch


def test_the_default_local_runtime_is_onnx(both):
    onnx, _ = both
    onnx.embed(["warm up"])
    assert settings.SLOP_EMBEDDINGS_RUNTIME == "onnx"
    assert onnx.runtime == "onnx"
    exported = onnx.load().onnx_path  # type: ignore[attr-defined]
    assert exported.name == "model.onnx" and exported.exists()
    assert onnx_export.weights_digest(bundled_model_path()) in exported.parent.name


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
    assert report == {"runtime": "onnx", "torch": False, "transformers": False, "width": 384}


@pytest.fixture
def exported_copy(tmp_path: Path) -> Path:
    """A folder holding a copy of the installed fp32 export (so no test re-exports, or writes into
    the environment's folder)."""
    installed = LocalProvider(bundled_model_path(), 4, runtime="onnx").load().onnx_path  # type: ignore[attr-defined]
    copy = tmp_path / "onnx" / installed.parent.name
    copy.mkdir(parents=True)
    (copy / "model.onnx").write_bytes(installed.read_bytes())
    return tmp_path / "onnx"


def test_the_int8_runtime_has_its_own_model_id_and_near_vectors(exported_copy):
    fp32 = LocalProvider(bundled_model_path(), 4, runtime="onnx")
    with override_settings(SLOP_EMBEDDINGS_ONNX_DIR=str(exported_copy)):
        int8 = LocalProvider(bundled_model_path(), 4, runtime="onnx-int8")
        got = int8.embed(TEXTS)
        made = int8.load().onnx_path  # type: ignore[attr-defined]
        # Made once from the fp32 file next to it; a second process finds it.
        assert made.parent == next(exported_copy.iterdir()) and made.name == onnx_export.INT8_NAME
        stamp = made.stat().st_mtime_ns
        again = LocalProvider(bundled_model_path(), 4, runtime="onnx-int8")
        again.embed(["warm up"])
        assert again.load().onnx_path == made and made.stat().st_mtime_ns == stamp  # type: ignore[attr-defined]
    assert int8.runtime == "onnx-int8"
    # Other vectors, so another id: never mixed with (or served from the cache as) fp32 ones.
    assert int8.model_id != fp32.model_id and int8.model_id.startswith(fp32.model_id)
    for vector, reference in zip(got, fp32.embed(TEXTS), strict=True):
        assert len(vector) == 384
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-4)
        # ~0.99 for words and passages; the empty text, with nothing but its markers, moves most.
        assert sum(a * b for a, b in zip(vector, reference, strict=True)) > 0.97


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
