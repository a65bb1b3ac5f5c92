"""One operation of an Engine's stack (tests/support/engine.py), in a process of its own: the
process the inline program runs in ends with the operation, as a language host's does under
`pulumi up` (Engine.run says why).

Job on stdin (pickle): `work_dir`, `project`, `stack`, `env` (the workspace's variables),
`program` (an importable function or a functools.partial of one), `op`, `options` (the
automation API's keyword arguments) and `linger` (let a program still running after the
operation go on to its end, as it does in the SDK's own process). The CLI's output lines and then the result (or the
CommandError) go to the protocol stream (this process's stdout); the program's own prints go to
stderr.
"""

from __future__ import annotations

import base64
import os
import pickle
import signal
import sys
from typing import Any, TextIO

RESULT = "\x1eresult "
LINE = "\x1eline "


def run(job: dict[str, Any], proto: TextIO) -> None:
    from pulumi import automation as auto

    from tests.support.engine import ENGINE

    def out(line: str) -> None:
        proto.write(LINE + line.replace("\n", " ") + "\n")
        proto.flush()

    settings = auto.ProjectSettings(name=job["project"], runtime="python")
    ws = auto.LocalWorkspaceOptions(work_dir=job["work_dir"], project_settings=settings, env_vars=job["env"],
                                    pulumi_command=auto.PulumiCommand(root=str(ENGINE)))
    stack = auto.select_stack(job["stack"], project_name=job["project"], program=job["program"], opts=ws)
    outcome: Any
    try:
        outcome = getattr(stack, job["op"])(on_output=out, color="never", **job["options"])
    except auto.errors.CommandError as failed:
        outcome = failed
    proto.write(RESULT + base64.b64encode(pickle.dumps(outcome)).decode() + "\n")
    proto.flush()


if __name__ == "__main__":
    # Engine.run's stop_group signals this process group, meaning the CLI. Had this process ended on
    # that SIGINT, the CLI's next write to its stdout (a pipe this process reads) would have killed
    # it with SIGPIPE (Go's rule for fds 1 and 2) before it unlocked the stack. It reads on until
    # the CLI exits. (A handler, not SIG_IGN, which the processes it starts would inherit.)
    signal.signal(signal.SIGINT, lambda *_: None)
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the program's prints (and the SDK's) stay out of the protocol
    sys.stdout = sys.stderr
    job = pickle.loads(base64.b64decode(sys.stdin.read()))
    run(job, protocol)
    sys.stderr.flush()
    if not job["linger"]:
        # The CLI has exited: a program still running in the SDK's language server thread ends
        # here, as a language host's process ends with the CLI (Python would wait for the thread).
        os._exit(0)
