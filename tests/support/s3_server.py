"""A SigV4-verifying S3 server for tests: moto's server with its authentication on, behind a
recorder of what each request carried (`python -m tests.support.s3_server RECORDS`).

moto checks the signature (it recomputes it from the signed headers, taking the payload hash
from a signed x-amz-content-sha256, or else hashing the body) but not that a signed
x-amz-content-sha256 is the body's hash, which S3 does: the recorder keeps, per request, the
method, path, headers and the body's SHA-256 in RECORDS (JSON lines), so a test checks that.
The first `NO_AUTH` requests (the IAM user, its key and its policy) go unsigned, as moto's
INITIAL_NO_AUTH_ACTION_COUNT allows; every later one must be signed by that user's key.
Prints the port it listens on (127.0.0.1), then serves until terminated.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

NO_AUTH = 3


def recording(app: Callable[..., Iterable[bytes]], records: Path) -> Callable[..., Iterable[bytes]]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        entry = {"method": environ["REQUEST_METHOD"], "path": environ.get("PATH_INFO", ""), "headers": headers,
                 "body_sha256": hashlib.sha256(body).hexdigest(), "body_length": len(body)}
        status: list[str] = []

        def start(code: str, *args: Any) -> Any:
            status.append(code)
            return start_response(code, *args)

        result = list(app(environ, start))
        entry["status"] = status[0] if status else ""
        with records.open("a") as f:
            f.write(json.dumps(entry) + "\n")
        return result

    return wrapped


def main() -> None:
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(NO_AUTH)  # read by moto.settings on import
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, recording(DomainDispatcherApplication(create_backend_app), Path(sys.argv[1])),
                         threaded=True, request_handler=MotoRequestHandler)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
