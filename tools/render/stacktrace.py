"""Registration without the SDK's call-stack capture, for the mock runtime only.

Since pulumi 3.195.0 the SDK walks the Python stack at every registration (and read) to send the
engine each resource's source position and call stack (`runtime/resource.py::_get_stack_trace`
at our pin, 3.272.0): `traceback.extract_stack`, a `stat` of every file on the stack, and a file
URI per frame below the third `__init__` on it. The mock monitor never reads either field, so
the offline render skips the walk (and the bench's floor with it): it was 8% of the samples of
a 100/40 render's evaluation (docs/performance.md). `pulumi preview` and `up` keep it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pulumi.runtime import resource
from pulumi.runtime.proto import source_pb2


@contextmanager
def skipped() -> Iterator[None]:
    """Registrations in this block send an empty stack trace and no source position, as the SDK
    itself does when there are fewer than three `__init__` frames on the stack (a `CustomResource`
    made at top level). For one thread at a time: blocks nest, but two threads leaving theirs out
    of order would leave the SDK's function swapped."""
    captured = getattr(resource, "_get_stack_trace", None)
    if captured is None:
        # An SDK that has no such function: nothing to skip, and the render is only slower.
        # tests/tools/test_render_stacktrace.py fails on such an upgrade.
        yield
        return
    resource._get_stack_trace = source_pb2.StackTrace
    try:
        yield
    finally:
        resource._get_stack_trace = captured
