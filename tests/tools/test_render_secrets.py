"""No secret reaches a file `make render` writes: planted config canaries and every secret the
program itself made (host keys, join and enrollment tokens, passwords)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.support.helpers import evaluate_config, stack_config
from tools.render.write import write_all

COMMAND = "command:remote:Command"


def test_canary_secrets_never_reach_any_output_file(tmp_path: Path) -> None:
    raw = stack_config("prod")
    raw["hosts"][3]["ssh"]["privateKeyConfig"] = "officeKey"
    canaries = {"sshPrivateKey": "CANARY-CLOUD-KEY-7f3a9c", "officeKey": "CANARY-OFFICE-KEY-1b2c3d"}
    ev = evaluate_config(raw, secrets=canaries)
    write_all(ev, tmp_path)
    forms = set()
    for value in canaries.values():
        forms |= {value, base64.b64encode(value.encode()).decode(), json.dumps(value)[1:-1]}
    # Every secret the program made (host keys, join and enrollment tokens, passwords), whole,
    # base64'd or JSON-escaped, and each line of a multi-line one: the writer scrubs only what it
    # reads out of secret-marked values, so a secret in a plain input would show here.
    for value in ev.secret_values:
        if len(value) >= 8:
            forms |= {value, base64.b64encode(value.encode()).decode(), json.dumps(value)[1:-1]}
        forms |= {line for line in value.splitlines() if len(line) >= 8 and "-----" not in line}
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 10
    for path in files:
        text = path.read_text()
        for form in forms:
            assert form not in text, f"secret leaked into {path.relative_to(tmp_path)}"
    plan = json.loads((tmp_path / "plan.json").read_text())
    conns = [r["inputs"]["connection"] for r in plan["resources"] if r["type"] == COMMAND]
    assert conns and all(c == "[secret]" for c in conns)
