"""Synthetic stacks of any size (the reference deployment, scaled): for the bench and tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tools.render.evaluate import raw_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[2]
SITE_SIZE = 10


def reference() -> dict[str, Any]:
    """The dev stack's config, namespace stripped."""
    return raw_stack_config(PROJECT_DIR, "dev")


def fleet(workstations: int, models: int) -> dict[str, Any]:
    """The reference deployment with `workstations` GPU workstations in on-prem sites of at
    most ten, and a catalog of `models` entries (the reference catalog, then extra models)."""
    raw = reference()
    cloud = [h for h in raw["hosts"] if not h["name"].startswith("ws-")]
    template = next(h for h in raw["hosts"] if h["name"] == "ws-1")
    raw["sites"] = [s for s in raw["sites"] if s["kind"] == "cloud"]
    hosts = list(cloud)
    for i in range(workstations):
        site, slot = divmod(i, SITE_SIZE)
        if slot == 0:
            raw["sites"].append({"name": f"office-{site}", "kind": "on-prem", "nat": True, "lanCidr": f"192.168.{site}.0/24"})
        hosts.append(dict(
            copy.deepcopy(template), name=f"ws-{i + 1}", site=f"office-{site}",
            existing={"address": f"192.168.{site}.{slot + 10}"}, vpnAddress=f"100.64.{site + 1}.{slot + 1}",
        ))
    raw["hosts"] = hosts
    catalog = raw["models"][:models]
    for k in range(len(catalog), models):
        if k % 2:
            catalog.append({"name": f"tf-model-{k}", "kind": "tf-model", "placement": "gpu",
                            "tf": {"basePath": f"/models/tf-model-{k}", "version": 1,
                                   "source": f"https://models.example.com/tf-model-{k}-1.tar.gz", "sha256": "1" * 64}})
        else:
            catalog.append({"name": f"model-{k}", "image": f"ghcr.io/example/model-{k}:1.0.{k}", "placement": "gpu",
                            "gpus": 1, "port": 8000, "talksTo": ["tf-serving"]})
    raw["models"] = catalog
    return raw
