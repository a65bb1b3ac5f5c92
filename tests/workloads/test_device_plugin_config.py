"""The sharing configs the program writes, parsed by the real NVIDIA device plugin at the chart's
version (built from its Go module by `make engine`): every profile of the example stacks, and
time-slicing, MPS and whole-GPU profiles, load; a replicated resource of one replica, which
the program wrote for whole GPUs before, is refused. No GPU here: a config that loads fails
later, at device discovery, which is how a loaded config is told from a refused one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from components.workloads.gpu_sharing import profile_config
from tests.support.helpers import PROJECT, evaluate_config, stack_config, unavailable

REFUSED = "unable to load config"
LOADED = "invalid device discovery strategy"  # after the config, where NVML would find the GPUs
# The chart runs the plugin with MPS_ROOT=<mps.root> (templates/daemonset-device-plugin.yml at 0.18.2).
MPS_ROOT = "/run/nvidia/mps"


def plugin() -> str:
    path = Path(os.environ.get("DEVICE_PLUGIN_BIN") or PROJECT / ".engine" / "bin" / "nvidia-device-plugin")
    if not path.exists():
        unavailable(f"{path} not built; run `make engine`")
    return str(path)


def load(config: str, tmp_path: Path) -> str:
    """What the plugin says about `config`: its last error line."""
    (tmp_path / "config.yaml").write_text(config)
    (tmp_path / "sock").mkdir(exist_ok=True)
    result = subprocess.run([plugin(), "--config-file", str(tmp_path / "config.yaml"), "--mps-root", str(tmp_path / "mps"),
                             "--kubelet-socket", str(tmp_path / "sock" / "kubelet.sock")],
                            capture_output=True, text=True, timeout=60)
    errors = [line for line in result.stderr.splitlines() if "error starting plugins" in line]
    assert errors, result.stderr[-2000:]
    return errors[-1]


@pytest.mark.parametrize(("replicas", "sharing"), [(4, "time-slicing"), (2, "mps"), (8, "mps"), (1, "time-slicing")])
def test_the_plugin_loads_every_sharing_mode_we_write(replicas: int, sharing: str, tmp_path: Path) -> None:
    said = load(profile_config(replicas, sharing), tmp_path)
    assert REFUSED not in said and LOADED in said, said


def test_the_plugin_refuses_a_replicated_resource_of_one(tmp_path: Path) -> None:
    config = yaml.safe_load(profile_config(4))
    config["sharing"]["timeSlicing"]["resources"][0]["replicas"] = 1  # what whole GPUs used to be written as
    said = load(yaml.safe_dump(config), tmp_path)
    assert REFUSED in said and "number of replicas must be >= 2" in said, said


@pytest.mark.parametrize("stack", ["dev", "ha", "prod", "llm"])
def test_every_profile_of_the_example_stacks_loads(stack: str, tmp_path: Path) -> None:
    ev = evaluate_config(stack_config(stack), stack=stack)
    maps = [r for r in ev.resources if r.name == "gpu-sharing-config"]
    if not maps:
        pytest.skip(f"{stack} has no GPU nodes")
    for profile, text in maps[0].inputs["data"].items():
        said = load(text, tmp_path)
        assert REFUSED not in said and LOADED in said, (profile, said)


def test_the_plugin_built_is_the_charts_version() -> None:
    from stacks.charts import pinned

    go_mod = (PROJECT / "engine" / "nvidia-device-plugin" / "go.mod").read_text()
    assert f"require github.com/NVIDIA/k8s-device-plugin v{pinned('nvidia-device-plugin').version}\n" in go_mod
