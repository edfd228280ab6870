"""Metrics, structured logs and traces for every process of the platform.

- `metrics`: Prometheus figures (requests per route pattern, DB and cache timings, Celery queue
  depth, LLM tokens and time to first token, tool calls), multi-process safe through
  prometheus_client's PROMETHEUS_MULTIPROC_DIR; served at /metrics.
- `logs`: JSON log lines (structlog over the standard logging module) carrying the request id,
  tenant id and key prefix, redacted like every other line (apps/core/redaction.py).
- `tracing`: OpenTelemetry spans after the GenAI semantic conventions (`chat {model}`,
  `execute_tool {tool}`, `invoke_agent {agent}`), exported by OTLP when configured, else no-ops.
- `middleware`, `db`, `cache`, `celery_signals`: where the figures are taken.

Labels are route patterns, methods, statuses, providers and platform model names: never a raw
path, a tenant, a key or anything a client chooses, so the number of series stays bounded.
"""
