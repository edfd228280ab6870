"""What each entry point (manage.py, Daphne, Celery) does first.

- A misconfiguration (no SECRET_KEY in production, `SLOP_DEBUG=maybe`, ...) ends the process with
  one line on stderr and exit status 2, not a traceback through Django's settings machinery.
- A web process loads the local embedding model before it listens, saying so, instead of making
  the first memory or resource write wait for it. A model that cannot load is a warning (the writes
  that need it answer 503 with the reason), except a runtime that must not fall back (`onnx-int8`,
  the default) and cannot run: then the process refuses to start, exit status 2, with one line
  naming the setting to change, since it would answer 503 for every embedding until someone looked.
- Then it says which stored vectors another embedding model made (the `embeddings` checks of memory
  and resources: one small query when there are none), with the commands that re-embed them.
"""

from __future__ import annotations

import logging
import sys
import time

logger = logging.getLogger("slop.startup")
MISCONFIGURED_EXIT_STATUS = 2


def settings_or_exit() -> None:
    """Load the settings now; exit with one line if they refuse the environment."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018 - the first attribute read imports the settings module
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"SLOP Platform cannot start: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(MISCONFIGURED_EXIT_STATUS) from None


def embedding_model_preload() -> None:
    """Load the local embedding model now (SLOP_EMBEDDINGS_PRELOAD); a failure is only logged,
    since the writes that need the model answer 503 with the same reason, unless the runtime cannot
    run at all and has no fallback (RuntimeUnavailable): then the process exits."""
    from django.conf import settings

    if not settings.SLOP_EMBEDDINGS_PRELOAD or settings.SLOP_EMBEDDINGS_PROVIDER != "local":
        return
    from apps.core.embeddings import EmbeddingError, RuntimeUnavailable, get_provider

    started = time.monotonic()
    logger.info("Loading the embedding model…")
    try:
        provider = get_provider()
        # Through the provider, not embed_texts(): nothing is cached for a text nobody asked for.
        provider.embed(["warm-up"])
    except RuntimeUnavailable as exc:
        logger.error("The embedding model cannot run: %s", exc)
        sys.stderr.write(f"SLOP Platform cannot start: {exc.message}\n")
        sys.stderr.flush()
        raise SystemExit(MISCONFIGURED_EXIT_STATUS) from None
    except EmbeddingError as exc:
        logger.warning("The embedding model is not loaded: %s", exc)
        return
    runtime = getattr(provider, "runtime", None)
    on = {"onnx": " on ONNX Runtime", "onnx-int8": " on ONNX Runtime (int8)", "torch": " on PyTorch"}.get(
        runtime or "", ""
    )
    logger.info("Embedding model ready in %.1f s%s", time.monotonic() - started, on)


def embedding_runtime_or_exit() -> None:
    """Before a web server starts its workers (slop_platform/web.py): a runtime with no fallback
    (`onnx-int8`) that cannot run ends this process with one line, exit status 2, rather than each
    worker failing at its start and being respawned by the server, again and again."""
    from django.conf import settings

    if not settings.SLOP_EMBEDDINGS_PRELOAD or settings.SLOP_EMBEDDINGS_PROVIDER != "local":
        return
    from apps.core.embeddings import EmbeddingError, RuntimeUnavailable, get_provider

    try:
        provider = get_provider()
        check = getattr(provider, "check_runnable", None)
        if check is not None:
            check()
    except RuntimeUnavailable as exc:
        sys.stderr.write(f"SLOP Platform cannot start: {exc.message}\n")
        sys.stderr.flush()
        raise SystemExit(MISCONFIGURED_EXIT_STATUS) from None
    except EmbeddingError:
        return  # said by each worker's preload, as a warning


def embedded_data_check() -> None:
    """Log the `embeddings` checks' warnings (stored vectors made by another model than the running
    one); what cannot be looked at now (no database yet) is left to `manage.py check --deploy`.
    Along with the preload (SLOP_EMBEDDINGS_PRELOAD): a process that imports the ASGI app without
    serving it (the tests, which switch the preload off) opens no database connection here."""
    from django.conf import settings
    from django.core.checks import run_checks
    from django.db import connections

    if not settings.SLOP_EMBEDDINGS_PRELOAD:
        return

    try:
        found = run_checks(tags=["embeddings"], include_deployment_checks=True)
    except Exception:  # a check must never stop the server
        logger.debug("The embeddings checks did not run", exc_info=True)
        return
    finally:
        # This thread's connection, not kept idle: the server's own threads open theirs.
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:
                connection.close()
    for message in found:
        logger.warning("%s", message.msg)
