"""Shared pytest configuration."""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the backend the daemon uses)."""
    return "asyncio"
