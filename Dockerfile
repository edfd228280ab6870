# One image for every process in compose.yaml: web (granian: slop_platform.web), worker and beat (Celery), the
# migrations and one-off `manage.py` commands. Build: `docker compose build`.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A compiler for dependencies that build from source; it stays in this stage.
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
# torch first and pinned, as the Makefile does, from PyTorch's CPU index: the Linux wheel on PyPI
# pulls several GB of CUDA packages that a CPU-only container never uses.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
# Then the dependencies alone, read from pyproject.toml, so a change to the code reuses this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install -r requirements.txt

FROM python:3.11-slim-bookworm
# The code runs from /app (PYTHONPATH), not from an installed copy. Static files are collected
# below, so WhiteNoise serves them from STATIC_ROOT instead of looking through the apps.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH PYTHONPATH=/app \
    SLOP_STATIC_FROM_APPS=false
COPY --from=build /opt/venv /opt/venv
RUN useradd --create-home --uid 1000 slop && install -d -o slop -g slop /app
WORKDIR /app
COPY --chown=slop:slop . .
# The embedding model exported to ONNX from the installed weights, offline, and its int8 copy (the
# default runtime), kept with the venv (/opt/venv/share/slop-platform/onnx, read-only for the app
# user), so no container exports or quantises it at start.
RUN python -m apps.core.embeddings.onnx_export --int8
USER slop
# collectstatic needs settings, not a database or the real secret.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=6s --start-period=90s --retries=3 \
    CMD ["python", "-m", "slop_platform.healthcheck"]
CMD ["python", "-m", "slop_platform.web", "--host", "0.0.0.0", "--port", "8000"]
