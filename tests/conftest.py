"""Shared pytest configuration."""

import pytest
from servers.rabbitmq import rabbitmq, rabbitmq_node  # noqa: F401  (the session's RabbitMQ node)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the backend the daemon uses)."""
    return "asyncio"
