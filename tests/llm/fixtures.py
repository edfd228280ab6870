from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llm.fake_upstreams import Upstream, start_upstream, stop_upstream


@pytest.fixture(scope="session")
def openai_upstream() -> Iterator[Upstream]:
    upstream = start_upstream("openai", "sk-test-openai")
    yield upstream
    stop_upstream(upstream)


@pytest.fixture(scope="session")
def anthropic_upstream() -> Iterator[Upstream]:
    upstream = start_upstream("anthropic", "sk-ant-test")
    yield upstream
    stop_upstream(upstream)
