"""compose.yaml, the Dockerfile and .dockerignore, checked by reading them (Docker cannot run here).

Compose's own rules are applied by hand where it matters: `${NAME:-default}` / `${NAME:?error}`
interpolation from .env, `environment` winning over `env_file`, YAML merge keys.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from slop_platform import healthcheck

ROOT = Path(__file__).resolve().parents[1]
APP_SERVICES = {"migrate", "web", "worker", "beat"}
LONG_RUNNING = {"web", "worker", "beat", "proxy", "postgres", "redis"}
SECRETS = {"SECRET_KEY", "POSTGRES_PASSWORD"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def settings_variables() -> set[str]:
    """Every variable settings.py reads through the env_* helpers."""
    tree = ast.parse((ROOT / "slop_platform" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id.startswith("env_")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(node.args[0].value)
    return names


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-|-|:\?|\?)?")


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default}, ${NAME:?error}, nested defaults included."""
    out, position = [], 0
    while (start := text.find("${", position)) != -1:
        out.append(text[position:start])
        match = _VARIABLE.match(text, start)
        assert match, f"unreadable interpolation in {text!r}"
        depth, end = 1, match.end()
        while depth:
            if text.startswith("${", end):
                depth, end = depth + 1, end + 2
                continue
            depth -= text[end] == "}"
            end += 1
        name, operator, argument = match.group(1), match.group(2), text[match.end() : end - 1]
        value = env.get(name)
        unset = value is None or (value == "" and operator in (":-", ":?"))
        if unset and operator in (":?", "?"):
            raise MissingVariable(f"{name}: {argument}")
        out.append(interpolate(argument, env) if unset and operator else value or "")
        position = end
    out.append(text[position:])
    return "".join(out)


def container_env(service: dict[str, Any], dotenv: dict[str, str]) -> dict[str, str]:
    """What a container's process sees: the env_file lines, then `environment` on top."""
    env: dict[str, str] = {}
    for entry in service.get("env_file", []):
        if (entry["path"] if isinstance(entry, dict) else entry) == ".env":
            env.update(dotenv)
    for name, value in (service.get("environment") or {}).items():
        env[name] = interpolate(str(value), dotenv)
    return env


def test_one_image_built_once_and_run_by_every_app_service(services: dict[str, dict[str, Any]]) -> None:
    built = [name for name, service in services.items() if "build" in service]
    assert built == ["web"]
    image = services["web"]["image"]
    assert {name for name, service in services.items() if service.get("image") == image} == APP_SERVICES


def test_every_setting_in_dotenv_reaches_every_app_container(services: dict[str, dict[str, Any]]) -> None:
    names = settings_variables()
    assert {"SECRET_KEY", "SLOP_ENCRYPTION_KEY", "STRIPE_SECRET_KEY", "OPENAI_API_KEY"} <= names
    dotenv = {name: f"value-of-{name}" for name in names | SECRETS}
    for name in sorted(APP_SERVICES):
        env = container_env(services[name], dotenv)
        lost = sorted(variable for variable in names if env.get(variable) != dotenv[variable])
        assert not lost, f"{name} does not get {lost} from .env"


def test_env_file_is_optional_and_defaults_never_shadow_it(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        assert {"path": ".env", "required": False} in services[name]["env_file"]
        for variable, value in services[name]["environment"].items():
            # ${SAME_NAME...}: the value in .env or the shell wins over this layout's default.
            assert str(value).startswith(f"${{{variable}:"), f"{name}: {variable}={value}"


def test_minimal_dotenv_gives_the_bundled_database_and_redis(services: dict[str, dict[str, Any]]) -> None:
    env = container_env(services["worker"], {"SECRET_KEY": "s", "POSTGRES_PASSWORD": "p@ss"})
    assert env["DATABASE_URL"] == "postgresql://slop:p@ss@postgres:5432/slop"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["SLOP_BEHIND_PROXY"] == "true"  # the proxy is the only way to the web replicas
    managed = {
        "SECRET_KEY": "s",
        "DATABASE_URL": "postgresql://u:p@db.example.com/slop",
        "REDIS_URL": "redis://r:6379/1",
    }
    env = container_env(services["web"], managed)
    assert env["DATABASE_URL"] == managed["DATABASE_URL"] and env["REDIS_URL"] == managed["REDIS_URL"]


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_secrets_have_no_default(services: dict[str, dict[str, Any]], secret: str) -> None:
    dotenv = {name: "x" for name in SECRETS - {secret}}
    with pytest.raises(MissingVariable, match=secret):
        for service in services.values():
            container_env(service, dotenv)


def test_restart_policies(services: dict[str, dict[str, Any]]) -> None:
    for name in LONG_RUNNING:
        assert services[name]["restart"] in ("unless-stopped", "always"), name
    assert services["migrate"]["restart"] == "no"  # a one-shot: it runs, then web, worker and beat start
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_web_scales_behind_the_proxy(services: dict[str, dict[str, Any]]) -> None:
    web = services["web"]
    assert "ports" not in web and "container_name" not in web  # no fixed host port: --scale web=N
    assert web["deploy"]["replicas"] >= 2
    command = web["command"]
    # The one web command of every layout (make run's serve, the e2e tests, bench/serving.py).
    assert (
        command[:3] == ["python", "-m", "slop_platform.web"]
        and command[command.index("--port") + 1] == "8000"
    )
    assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - the container's interface
    dockerfile = dict(dockerfile_instructions())
    assert json.loads(dockerfile["CMD"]) == command
    proxy = services["proxy"]
    assert any(port.endswith(":80") for port in proxy["ports"])
    mounted = {volume.split(":")[1]: volume.split(":")[0] for volume in proxy["volumes"]}
    caddyfile = (ROOT / mounted["/etc/caddy/Caddyfile"]).read_text()
    assert re.search(r"dynamic a web 8000\b", caddyfile)  # every replica, re-resolved
    assert proxy["depends_on"]["web"] == {"condition": "service_healthy"}


def test_web_healthcheck_passes_allowed_hosts(services: dict[str, dict[str, Any]]) -> None:
    test = services["web"]["healthcheck"]["test"]
    assert test == ["CMD", "python", "-m", "slop_platform.healthcheck"]
    assert "127.0.0.1" not in " ".join(test)
    assert healthcheck.probe_host("slop.example.com,localhost") == "slop.example.com"
    assert healthcheck.probe_host(" .example.com") == "example.com"
    assert healthcheck.probe_host("*") == "localhost"
    assert healthcheck.probe_host("") is None


def test_celery_processes_and_data_services(services: dict[str, dict[str, Any]]) -> None:
    assert services["worker"]["command"][:4] == ["celery", "-A", "slop_platform", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "slop_platform", "beat"]
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert services["redis"]["image"].startswith("redis:")
    for name in ("postgres", "redis"):
        assert "ports" not in services[name]  # reachable from the compose network only
        assert "healthcheck" in services[name]


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_installs_cpu_torch_first_then_the_dependencies() -> None:
    runs = [argument for instruction, argument in dockerfile_instructions() if instruction == "RUN"]
    installs = [run for run in runs if "pip install" in run]
    first = installs[0]
    assert '"torch==2.13.0"' in first and "--index-url https://download.pytorch.org/whl/cpu" in first
    assert all("torch" not in run for run in installs[1:])
    # The requirement list the image installs is exactly pyproject's dependencies.
    script = next(run for run in runs if "tomllib" in run)
    command = shlex.split(script)
    assert command[:2] == ["python", "-c"]
    printed = subprocess.run(
        [sys.executable, "-c", command[2]], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert printed.splitlines() == dependencies


def test_dockerfile_runs_as_a_user_and_copies_code_after_the_dependencies() -> None:
    instructions = dockerfile_instructions()
    kinds = [instruction for instruction, _ in instructions]
    assert kinds.count("FROM") == 2  # the compiler stays in the build stage
    last_stage = instructions[len(kinds) - 1 - kinds[::-1].index("FROM") :]
    users = [argument for instruction, argument in last_stage if instruction == "USER"]
    assert users and users[-1] != "root"
    copy_code = next(
        i for i, (kind, argument) in enumerate(instructions) if kind == "COPY" and ". ." in argument
    )
    last_install = max(i for i, (kind, argument) in enumerate(instructions) if "pip install" in argument)
    assert copy_code > last_install


def test_dockerignore_keeps_secrets_data_and_caches_out_of_the_build() -> None:
    lines = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    required = {
        ".venv",
        ".data",
        ".git",
        ".env",
        "staticfiles",
        "**/__pycache__",
        ".pytest_cache",
        ".mypy_cache",
    }
    assert required <= lines, required - lines
    assert "!.env.example" in lines


def test_env_example_names_the_required_and_often_lost_settings() -> None:
    text = (ROOT / ".env.example").read_text()
    present = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    needed = SECRETS | {"SLOP_ENCRYPTION_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "OPENAI_API_KEY",
                        "ALLOWED_HOSTS", "SLOP_SECURE_COOKIES", "DATABASE_URL", "REDIS_URL"}  # fmt: skip
    assert needed <= present, needed - present
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_dockerfile_exports_the_embedding_model_to_onnx_at_build_time() -> None:
    """Containers run the ONNX model (and its int8 copy, the default runtime) from the image; none
    exports or quantises it at start."""
    instructions = dockerfile_instructions()
    export = next(
        i for i, (kind, argument) in enumerate(instructions) if kind == "RUN" and "onnx_export" in argument
    )
    copy_code = next(
        i for i, (kind, argument) in enumerate(instructions) if kind == "COPY" and ". ." in argument
    )
    user = max(i for i, (kind, _) in enumerate(instructions) if kind == "USER")
    assert copy_code < export < user  # needs the code; writes into the venv as root
    assert "--int8" in instructions[export][1]
    makefile = (ROOT / "Makefile").read_text()
    assert "-m apps.core.embeddings.onnx_export --int8" in makefile  # and `make`'s install step does too
