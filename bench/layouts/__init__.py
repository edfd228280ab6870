"""Serving layouts that bench/serving.py compares with the platform's own (slop_platform.asgi)."""
