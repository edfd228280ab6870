"""Every entry point refuses a production misconfiguration with one line, never a traceback; a data
folder that `make run` marked puts the processes that use it in development mode."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from apps.core.embeddings import reset_provider
from slop_platform.startup import embedding_model_preload

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = {
    "manage.py": [sys.executable, "manage.py", "create_tenant", "Acme Robotics"],
    "web server": [sys.executable, "-m", "slop_platform.web", "--port", "0"],
    "celery worker": [sys.executable, "-m", "celery", "-A", "slop_platform", "worker"],
    "celery beat": [sys.executable, "-m", "celery", "-A", "slop_platform", "beat"],
}


def shell_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """An operator's shell: none of the test run's settings, only what the case sets."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SLOP_", "CELERY_"))
        and name not in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS")
    }
    return {**env, "SLOP_DATA_DIR": str(data_dir), **extra}


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("entry_point", list(ENTRY_POINTS))
def test_no_secret_key_in_production_is_one_line(entry_point: str, tmp_path: Path) -> None:
    result = run(ENTRY_POINTS[entry_point], shell_env(tmp_path))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.splitlines() == [
        "SLOP Platform cannot start: SECRET_KEY must be set in production (for development: "
        f"SLOP_DEBUG=true, or a data folder that `make run` has marked, which {tmp_path} is not)"
    ]


def test_a_bad_value_is_one_line_naming_it(tmp_path: Path) -> None:
    result = run([sys.executable, "manage.py", "check"], shell_env(tmp_path, SLOP_DEBUG="maybe"))

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "SLOP Platform cannot start: SLOP_DEBUG must be true or false, not 'maybe'"
    ]


def print_debug(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "--no-imports",
            "-c",
            "from django.conf import settings; print(settings.DEBUG)",
        ],
        env,
    )


def test_a_folder_marked_by_make_run_is_development(tmp_path: Path) -> None:
    (tmp_path / "development").write_text("make run\n")

    result = print_debug(shell_env(tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_the_marker_yields_to_slop_debug_and_to_a_named_database(tmp_path: Path) -> None:
    (tmp_path / "development").write_text("make run\n")

    told = print_debug(shell_env(tmp_path, SLOP_DEBUG="false", SECRET_KEY="k" * 40))
    told_without_key = run([sys.executable, "manage.py", "check"], shell_env(tmp_path, SLOP_DEBUG="false"))
    # A production database (say, a data folder copied into an image): the marker does not count.
    named = run(
        [sys.executable, "manage.py", "check"],
        shell_env(tmp_path, DATABASE_URL="postgresql://slop@db.invalid/slop"),
    )

    assert told.stdout.strip() == "False"
    assert told_without_key.stderr.splitlines() == [
        "SLOP Platform cannot start: SECRET_KEY must be set in production (SLOP_DEBUG is false)"
    ]
    assert named.returncode == 2
    assert named.stderr.splitlines() == [
        "SLOP Platform cannot start: SECRET_KEY must be set in production (DATABASE_URL is set, so "
        f"the development mark of {tmp_path} does not count)"
    ]


def test_a_model_that_cannot_load_is_a_warning_not_a_dead_server(
    settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SLOP_EMBEDDINGS_PRELOAD = True
    settings.SLOP_EMBEDDINGS_PROVIDER = "local"
    settings.SLOP_EMBEDDINGS_MODEL_PATH = str(tmp_path)  # no model there
    reset_provider()
    try:
        with caplog.at_level(logging.INFO, logger="slop.startup"):
            embedding_model_preload()
    finally:
        reset_provider()

    assert [record.getMessage() for record in caplog.records] == [
        "Loading the embedding model…",
        f"The embedding model is not loaded: No sentence-transformers model at {tmp_path}",
    ]


def test_the_default_int8_runtime_that_cannot_run_refuses_to_start(
    settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """No fallback for int8 (other vectors under its id), and no server answering 503 for every
    embedding either: the process stops, with the reason and the setting to change."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings.SLOP_EMBEDDINGS_PRELOAD = True
    settings.SLOP_EMBEDDINGS_PROVIDER = "local"
    settings.SLOP_EMBEDDINGS_RUNTIME = "onnx-int8"
    settings.SLOP_EMBEDDINGS_ONNX_DIR = str(blocker / "onnx")  # no model there, none can be made
    reset_provider()
    try:
        with caplog.at_level(logging.INFO, logger="slop.startup"), pytest.raises(SystemExit) as exited:
            embedding_model_preload()
    finally:
        reset_provider()

    assert exited.value.code == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("SLOP Platform cannot start: SLOP_EMBEDDINGS_RUNTIME=onnx-int8 cannot run: ")
    assert "set SLOP_EMBEDDINGS_RUNTIME=onnx" in line and "onnx_export --int8" in line
    assert caplog.records[-1].levelname == "ERROR"


def test_the_web_server_refuses_before_its_workers_when_int8_cannot_run(tmp_path: Path) -> None:
    """In the parent, before granian starts (and would respawn) workers that each fail to load."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run(
        ENTRY_POINTS["web server"],
        shell_env(tmp_path, SLOP_DEBUG="true", SLOP_EMBEDDINGS_ONNX_DIR=str(blocker / "onnx")),
    )

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "SLOP Platform cannot start: SLOP_EMBEDDINGS_RUNTIME=onnx-int8 cannot run: no writable folder "
        f"for the ONNX model among ['{blocker / 'onnx'}']. Make its model ahead (python -m "
        "apps.core.embeddings.onnx_export --int8) or set SLOP_EMBEDDINGS_RUNTIME=onnx (fp32, PyTorch "
        "as its fallback; README, Embeddings)"
    ]


def test_no_preload_when_switched_off(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.SLOP_EMBEDDINGS_PRELOAD = False

    with caplog.at_level(logging.INFO, logger="slop.startup"):
        embedding_model_preload()

    assert caplog.records == []
