"""The blast radius of one catalog entry: adding, changing or removing a model touches only its
own resources (and TF-Serving's model list for a TF model)."""

from __future__ import annotations

import copy

from tests.support.helpers import evaluate_config, stack_config
from tools.render.plan import Evaluation, PlanChanges

# --- Blast radius -----------------------------------------------------------------------

def changed(before: Evaluation, after: Evaluation) -> PlanChanges:
    """(added, removed, changed-inputs) resource names between two plans."""
    return before.changes(after)


NEW_SERVICE = {"name": "table-engine", "image": "ghcr.io/example/table-engine:0.1.0", "placement": "gpu", "gpus": 1,
               "port": 8000, "talksTo": ["tf-serving"]}
NEW_TF_MODEL = {"name": "table-detector", "kind": "tf-model", "placement": "gpu", "tf": {"basePath": "/models/table-detector", "version": 2,
                "source": "https://models.example.com/table-detector-2.tar.gz", "sha256": "1" * 64}}


def test_adding_a_model_adds_only_its_own_resources(dev: Evaluation) -> None:
    raw = stack_config("dev")
    raw["models"].append(copy.deepcopy(NEW_SERVICE))
    added, removed, modified = changed(dev, evaluate_config(raw))
    assert added == {"table-engine", "table-engine-deployment", "table-engine-service", "table-engine-pdb",
                     "table-engine-egress", "table-engine-to-tf-serving"}
    assert removed == set() and modified == set()


def test_adding_a_tf_model_changes_only_the_tf_serving_model_list_and_its_fetch_containers(dev: Evaluation) -> None:
    # Its `source` adds a fetch container to TF-Serving's pod (a restart); nothing else changes.
    raw = stack_config("dev")
    raw["models"].append(copy.deepcopy(NEW_TF_MODEL))
    added, removed, modified = changed(dev, evaluate_config(raw))
    assert (added, removed, modified) == (set(), set(), {"tf-serving-models", "tf-serving-deployment"})


def test_removing_a_model_removes_only_its_own_resources(dev: Evaluation) -> None:
    raw = stack_config("dev")
    raw["models"] = [m for m in raw["models"] if m["name"] != "layout-engine"]
    raw["models"][0]["talksTo"] = ["ocr-engine", "redis"]  # the receipt API stops calling it
    added, removed, modified = changed(dev, evaluate_config(raw))
    assert removed == {"layout-engine", "layout-engine-deployment", "layout-engine-service", "layout-engine-pdb",
                       "layout-engine-egress", "layout-engine-to-tf-serving", "receipt-api-to-layout-engine"}
    assert added == set() and modified == {"receipt-api-egress"}  # the caller's own egress list
