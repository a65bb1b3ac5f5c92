"""A stand-in registry for the push check (tests only): `python -m tests.support.stub_registry
ADDRESS PORT CERT KEY LOG CODES [LOCATION]`. HTTPS; `GET /v2/` answers 200 as a registry's API
check does; each `POST` answers the next of CODES (comma-separated, the last one repeated), with
LOCATION as its `Location`, which is how distribution answers an upload it starts (202 and the
session's URL); `DELETE` answers 204. Every request is appended to LOG as `METHOD PATH AUTH`, AUTH
`auth` when it carried an Authorization header, so a test sees what reached it."""

from __future__ import annotations

import http.server
import sys
import threading

from tests.support.https_files import serve_tls


def main(address: str, port: str, cert: str, key: str, log: str, codes: str, location: str = "") -> None:
    answers = [int(c) for c in codes.split(",")]
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, code: int, headers: dict[str, str] | None = None) -> None:
            with lock, open(log, "a") as out:
                out.write(f"{self.command} {self.path} {'auth' if self.headers.get('Authorization') else '-'}\n")
            self.send_response(code)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self._answer(200 if self.path == "/v2/" else 404)

        def do_POST(self) -> None:
            with lock:
                code = answers.pop(0) if len(answers) > 1 else answers[0]
            self._answer(code, {"Location": location} if location else {})

        def do_DELETE(self) -> None:
            self._answer(204)

        def log_message(self, *args: object) -> None:
            pass

    serve_tls(address, port, Handler, cert, key)


if __name__ == "__main__":
    main(*sys.argv[1:])
