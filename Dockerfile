FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml ./
COPY apps ./apps
COPY slop_platform ./slop_platform
# The CPU build of torch first: an unpinned torch pulls several GB of CUDA packages.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" && pip install .
COPY . .
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
RUN useradd --create-home slop && chown -R slop /app
USER slop
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "slop_platform.asgi:application"]
