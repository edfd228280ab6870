from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.backends.signals import connection_created

        from apps.core.observability import celery_signals, db, tracing

        connection_created.connect(db.install, dispatch_uid="slop-db-observability")
        del celery_signals  # imported for its signal receivers
        tracing.configure(
            endpoint=settings.OTEL_EXPORTER_OTLP_ENDPOINT,
            service_name=settings.OTEL_SERVICE_NAME,
            sample_ratio=settings.OTEL_TRACES_SAMPLER_RATIO,
        )
