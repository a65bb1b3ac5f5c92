"""A fact of kube-apiserver 1.32 the known-nodes policies live with (docs/upstream.md), on the
lab's real API server: once the last ValidatingAdmissionPolicy with a ConfigMap `paramKind` is
deleted, the policies made after it read their params from a frozen copy of the ConfigMaps,
until the API server restarts. The admission plugin cancels that paramKind's informer when no
policy uses it (k8s.io/apiserver v0.32.13 `policy/generic/policy_source.go`, the orphaned param
informers' clean-up), and the informer is the shared factory's, whose `Start` never runs an
informer it started once again (client-go `informers/factory.go`).

So a lab whose control plane outlives a `destroy` (a real one removes MicroK8s and its API
server with it) restarts its API server before the next stack (tests/support/bench_lab.py)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

from tools.lab.kube import ControlPlane

NAME = "lab-vap-params-fact"
NAMESPACE = "default"


def policy(plane: ControlPlane) -> None:
    """A policy that admits a Namespace only if its name is a key of the ConfigMap, and its binding."""
    spec = {
        "failurePolicy": "Fail", "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["namespaces"]}]},
        "matchConditions": [{"name": "ours", "expression": f"object.metadata.name.startsWith('{NAME}-')"}],
        "validations": [{"expression": "has(params.data) && object.metadata.name in params.data", "message": "not listed"}],
    }
    binding = {"policyName": NAME, "validationActions": ["Deny"],
               "paramRef": {"name": NAME, "namespace": NAMESPACE, "parameterNotFoundAction": "Deny"}}
    for kind, body in (("ValidatingAdmissionPolicy", spec), ("ValidatingAdmissionPolicyBinding", binding)):
        plane.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                                                               "metadata": {"name": NAME}, "spec": body}))


def listing(plane: ControlPlane, *names: str) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NAME, "namespace": NAMESPACE}, "data": dict.fromkeys(names, "x")}
    plane.kubectl("apply", "-f", "-", input=json.dumps(cm))


def admitted(plane: ControlPlane, name: str) -> bool:
    made = plane.kubectl("create", "namespace", name, "--dry-run=server", check=False)
    assert made.returncode == 0 or "not listed" in made.stderr or "no params found" in made.stderr, made.stderr
    return made.returncode == 0


def within(seconds: float, check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def test_policies_made_after_the_last_configmap_param_policy_went_read_frozen_params(plane: ControlPlane) -> None:
    a, b = f"{NAME}-a", f"{NAME}-b-{uuid.uuid4().hex[:6]}"
    listing(plane, a)
    policy(plane)
    try:
        assert within(20, lambda: admitted(plane, a) and not admitted(plane, b)), "the first policy never took effect"
        listing(plane, a, b)  # while a policy uses it, the informer follows the ConfigMap
        assert within(20, lambda: admitted(plane, b))
        listing(plane, a)
        assert within(20, lambda: not admitted(plane, b))
        plane.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", NAME)
        assert within(20, lambda: admitted(plane, b)), "the deleted policy still refuses"
        time.sleep(3)  # the plugin's refresh (debounced, about a second) cancels the informer
        listing(plane, a, b)
        policy(plane)
        assert within(20, lambda: not admitted(plane, f"{NAME}-c")), "the new policy never took effect"
        # The ConfigMap lists b, but the new policy reads the copy frozen when the informer stopped.
        assert not within(15, lambda: admitted(plane, b)), "upstream now follows the ConfigMap again: update docs/upstream.md"
        plane.restart_apiserver()
        assert within(30, lambda: admitted(plane, b)), "a restarted API server still reads the old list"
    finally:
        plane.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", NAME, "--ignore-not-found")
        plane.kubectl("delete", "configmap", NAME, "-n", NAMESPACE, "--ignore-not-found")
