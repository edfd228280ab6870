"""A PostgreSQL backend that starts the embedded server (pgserver) on its first connection."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base

from slop_platform.embedded import embedded_connection_params


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        self._fill_embedded_settings()
        return super().get_connection_params()

    def _fill_embedded_settings(self) -> None:
        if self.settings_dict.get("HOST"):
            return
        params = embedded_connection_params(settings.DATA_DIR)
        self.settings_dict["HOST"] = params["host"]
        self.settings_dict["PORT"] = params["port"] or ""
        self.settings_dict["USER"] = params["user"]
