"""A TCP relay from a listening socket it inherits to an address it dials: started inside a
lab's network namespace with a socket bound on the machine's loopback, it lets the operator's
tools (the Pulumi CLI, its providers, kubectl) reach a server that listens only inside the
namespace, with nothing of the lab on the machine's own interfaces.

    python -m tools.lab.forward FD HOST PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(fd: int, host: str, port: int) -> None:
    listener = socket.socket(fileno=fd)

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))

    server = await asyncio.start_server(relay, sock=listener)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> int:
    fd, host, port = int(argv[0]), argv[1], int(argv[2])
    asyncio.run(_serve(fd, host, port))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
