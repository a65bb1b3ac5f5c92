"""A static HTTPS file server for the airgap lab's `files` mirror (a private CA's certificate):
`python -m tests.support.https_files ADDRESS PORT DIRECTORY CERT KEY`. Python's own http.server,
wrapped in TLS; it answers GET and HEAD as a web server does."""

from __future__ import annotations

import functools
import http.server
import ssl
import sys
from collections.abc import Callable


def serve_tls(address: str, port: str, handler: Callable[..., http.server.BaseHTTPRequestHandler], cert: str, key: str) -> None:
    """Python's threading http.server behind TLS with CERT/KEY, until the process is stopped."""
    server = http.server.ThreadingHTTPServer((address, int(port)), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def main(address: str, port: str, directory: str, cert: str, key: str) -> None:
    serve_tls(address, port, functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory), cert, key)


if __name__ == "__main__":
    main(*sys.argv[1:])
