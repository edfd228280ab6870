"""A TCP proxy to PostgreSQL that a test can freeze (SIGSTOP) like a server that stops answering.

    python tests/e2e/tcp_proxy.py <listen port> <target>

`target` is host:port, or the path of a Unix socket (the embedded pgserver's). Stopped, it accepts
nothing and forwards nothing, though the kernel still completes TCP handshakes: what a client sees
of a frozen or paused database server. Resumed (SIGCONT), it carries on.
"""

from __future__ import annotations

import asyncio
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(port: int, target: str) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            if target.startswith("/"):
                server_reader, server_writer = await asyncio.open_unix_connection(target)
            else:
                host, _, target_port = target.rpartition(":")
                server_reader, server_writer = await asyncio.open_connection(host, int(target_port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
