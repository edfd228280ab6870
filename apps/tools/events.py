"""Job status events through the channel layer: the job's SSE stream listens to its group."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.urls import get_script_prefix

from apps.tools.models import ToolJob

logger = logging.getLogger("slop.tools")


def job_group(tenant_id: int, job_id: str) -> str:
    # The tenant is in the name, so a guessed job id from another tenant finds nothing.
    return f"tools.job.{tenant_id}.{job_id}"


def job_as_dict(job: ToolJob) -> dict[str, Any]:
    return {
        "job_id": job.public_id,
        "tool": job.tool_slug,
        "status": job.status,
        "result": job.result,
        "error": job.error or None,
        "error_code": job.error_code or None,
        "call_id": job.call_id or None,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        # Inside a request below /t/<slug>/ the prefix is that public surface's; elsewhere "/".
        "status_url": f"{get_script_prefix()}tools/jobs/{job.public_id}",
        "stream_url": f"{get_script_prefix()}tools/jobs/{job.public_id}/stream",
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if hasattr(value, "isoformat"):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def job_event(job: ToolJob) -> dict[str, Any]:
    return {"type": "status", **_jsonable(job_as_dict(job))}


def job_publish(job: ToolJob) -> None:
    """Tell the job's listeners its new status. Best effort: streams also poll the database."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            job_group(job.tenant_id, job.public_id), {"type": "job.status", "event": job_event(job)}
        )
    except Exception:  # a stream that misses an event catches up from the database
        logger.warning("Could not publish the status of job %s", job.public_id, exc_info=True)
