"""The Netmaker identifiers, tokens and master key shared by the tests of the Netmaker backend."""

from __future__ import annotations

import base64
import json

# Netmaker's shapes at v0.90.0: host and node ids are UUIDs (models/host.go, models/node.go);
# an enrollment token is base64 of {"server", "value"} (logic/enrollmentkey.go, Tokenize).
IDS = {"H0": "0b0e6a52-0000-4000-8000-000000000000", "H1": "1b0e6a52-0000-4000-8000-000000000001",
       "N0": "2b0e6a52-0000-4000-8000-000000000000", "N1": "3b0e6a52-0000-4000-8000-000000000001"}


def token_of(value: str, server: str = "api.nm.example.com") -> str:
    return base64.b64encode(json.dumps({"server": server, "value": value}).encode()).decode()


GOOD_TOKEN = token_of("TOKEN-SECRET-1")


MASTER = "MASTERKEY-0123456789abcdef0123456789\n"
