"""The engine targets every provider, whatever `--target` or `--exclude` say: why the lab runs
the layers below the cluster as a program of their own (tests/stacks/test_engine_lab.py)
rather than excluding the Kubernetes provider."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
from pulumi import automation as auto

from tests.support.engine import Engine

pytestmark = [pytest.mark.e2e, pytest.mark.engine]


def provider_program() -> None:
    """A provider of a plugin this machine does not have, and one resource using it."""
    import pulumi_random as random

    provider = random.Provider("unplugged")
    random.RandomId("id", byte_length=4, opts=pulumi.ResourceOptions(provider=provider))


def test_an_excluded_provider_is_loaded_all_the_same(tmp_path: Path) -> None:
    """An update that excludes the provider and everything using it still loads its plugin."""
    eng = Engine(tmp_path, provider_program)
    try:
        provider = "urn:pulumi:lab::hybrid-ai-lab::pulumi:providers:random::unplugged"
        with pytest.raises(auto.errors.CommandError) as failed:
            eng.run("up", exclude=[provider], exclude_dependents=True)
        assert "no resource plugin 'pulumi-resource-random' found" in str(failed.value), str(failed.value)[-1500:]
    finally:
        eng.stack.workspace.remove_stack(eng.stack.name, force=True)
