"""ASGI entry point of a web process (granian runs `slop_platform.asgi:application`).

Plain HTTP goes to Django's WSGI handler on a thread pool, streams and WebSocket to Django's and
Channels' ASGI side (apps/core/serving.py says why and how it routes). To add:

- a streaming HTTP route (an async view answering a stream): its path pattern in `STREAMING`;
- WebSocket routes: in slop_platform/routing.py;
- a whole ASGI application (an MCP server, say): `(prefix, app)` in `MOUNTS`; it gets every
  request under the prefix, HTTP and WebSocket, as it arrives (no Django middleware in front).
"""

from __future__ import annotations

import gc
import os

import django

from slop_platform.startup import embedded_data_check, embedding_model_preload, settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slop_platform.settings")
settings_or_exit()
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application() does first

from channels.routing import URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.core import invalidation, loop_io  # noqa: E402
from apps.core.asgi import JsonWSGIHandler, SingleHopASGIHandler  # noqa: E402
from apps.core.observability import multiprocess  # noqa: E402
from apps.core.redaction import install_access_log  # noqa: E402
from apps.core.serving import ASGIApp, ServingFront  # noqa: E402
from apps.tenants.authentication import ApiKeyAuthMiddleware  # noqa: E402
from apps.tenants.public import PublicSurfaceASGIMiddleware  # noqa: E402
from slop_platform.routing import websocket_urlpatterns  # noqa: E402

install_access_log()

# Paths (below a /t/<slug> prefix too) answered by Django's ASGI handler: every route that may
# answer a stream. POST /chat streams with "stream": true in its body, so all of /chat goes there.
STREAMING = [
    r"/chat(/stream)?$",
    r"/tools/jobs/[^/]+/stream$",
]
MOUNTS: list[tuple[str, ASGIApp]] = []

# The MCP door (PROTOCOL.md §13): the SDK's Streamable HTTP server, and its RFC 9728 metadata.
from apps.facades.mcp.door import MCP_PATH, METADATA_PATH, McpDoor  # noqa: E402

mcp_door = McpDoor()
MOUNTS.append((MCP_PATH, mcp_door))
MOUNTS.append((METADATA_PATH, mcp_door))

# Requests served by one view without URL resolution or DRF's dispatch (apps.tenants.direct): the
# busiest ones, as JSON clients send them; the rest of each route goes through Django as before.
from apps.memory import direct as memory_direct  # noqa: E402
from slop_platform.views import info_direct_route, info_loop_route  # noqa: E402

DIRECT = [memory_direct.route(), memory_direct.store_route(), info_direct_route()]
# Of those, the ones answered on the event loop, without a thread, when the process can
# (apps.tenants.loop); what they hand on goes to their direct route.
LOOP = [memory_direct.loop_route(), memory_direct.store_loop_route(), info_loop_route()]

django_asgi_app = SingleHopASGIHandler()
websocket_app = PublicSurfaceASGIMiddleware(ApiKeyAuthMiddleware(URLRouter(websocket_urlpatterns)))

application = ServingFront(
    wsgi=JsonWSGIHandler(),
    asgi_http=django_asgi_app,
    websocket=websocket_app,
    streaming=STREAMING,
    mounts=MOUNTS,
    direct=DIRECT,
    loop=LOOP,
    threads=settings.SLOP_WEB_THREADS,
    # Other processes' changes to cached rows (API keys) reach this one within milliseconds.
    on_startup=[invalidation.start_listening],
    on_shutdown=[loop_io.close, multiprocess.flush_at_shutdown],
)

# Before the server listens, so no request waits for it; then what stored vectors need a reembed.
embedding_model_preload()
embedded_data_check()

# Everything loaded so far (Django, the apps, the model's Python side: ~400,000 objects) lives as
# long as the process: out of the collector's sight, a full collection scans only what requests
# made since. Each full collection of them held a worker ~300 ms under load, the p99 of
# POST /memory (README, "Serving layout and performance").
gc.freeze()
