"""Shared pytest configuration."""

import pytest
from servers.erp_standin import channel_servers, channels, erp, erp_server  # noqa: F401  (HTTP stand-ins per module)
from servers.rabbitmq import amqp_url, broker, rabbitmq, rabbitmq_node  # noqa: F401  (the session's RabbitMQ node)
from servers.sshd import sshd  # noqa: F401  (the session's OpenSSH server)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the backend the daemon uses)."""
    return "asyncio"
