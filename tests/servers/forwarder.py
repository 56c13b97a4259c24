"""A TCP forwarder on loopback: a server that is not there until the test starts it.

Tests of "the broker was down when crossdock started" point crossdock at a free port, then start a
forwarder on that port to the real server, which is the same to crossdock as the server coming up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import ByteStream, SocketStream, TaskGroup


async def _pipe(source: ByteStream, target: ByteStream, group: TaskGroup) -> None:
    try:
        async for chunk in source:
            await target.send(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    group.cancel_scope.cancel()  # one side ended: end the other, as a closed connection would


@asynccontextmanager
async def forwarding(port: int, target_port: int) -> AsyncIterator[None]:
    """Accept on 127.0.0.1:`port` and pass each connection on to 127.0.0.1:`target_port`, both ways."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)

    async def connect(client: SocketStream) -> None:
        async with (client, await anyio.connect_tcp("127.0.0.1", target_port) as upstream,
                    anyio.create_task_group() as group):
            group.start_soon(_pipe, client, upstream, group)
            group.start_soon(_pipe, upstream, client, group)

    async with listener, anyio.create_task_group() as serving:
        serving.start_soon(listener.serve, connect)
        yield
        serving.cancel_scope.cancel()
