"""A ValidatingAdmissionPolicy evaluated as kube-apiserver 1.32 does, for render-level tests:
the request must match a resourceRule (group, version, operation, `resource` or
`resource/subresource`), then every matchCondition must be true, then every validation must be
true or the request is denied. CEL by cel-python (standard CEL; the policy uses no Kubernetes
CEL library function). Only what the program's policies use is modelled (params as the bound
object itself, none when missing; no namespace/object selectors, no variables, no
auditAnnotations): anything else raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

_ENV = celpy.Environment()


@dataclass(frozen=True)
class Request:
    user: str
    groups: tuple[str, ...]
    operation: str
    resource: str
    sub_resource: str
    obj: Mapping[str, Any] | None
    old: Mapping[str, Any] | None
    extra: Mapping[str, tuple[str, ...]] | None = None  # the user's extra (a pod's token: its node); absent when empty

    def activation(self) -> dict[str, Any]:
        user: dict[str, Any] = {"username": self.user}
        if self.groups:
            user["groups"] = list(self.groups)
        if self.extra:
            user["extra"] = {k: list(v) for k, v in self.extra.items()}
        return {
            # The API server leaves out an empty subResource: `request.subResource` is then an error.
            "request": {"operation": self.operation, "userInfo": user, **({"subResource": self.sub_resource} if self.sub_resource else {}),
                        "resource": {"group": "", "version": "v1", "resource": self.resource}},
            "object": self.obj, "oldObject": self.old,
        }


def _cel(expression: str, activation: Mapping[str, Any]) -> bool:
    program = _ENV.program(_ENV.compile(expression))
    try:
        result = program.evaluate({k: json_to_cel(v) for k, v in activation.items()})
    except CELEvalError as e:
        raise ValueError(f"{expression!r}: {e}") from e
    if not isinstance(result, celpy.celtypes.BoolType):  # an error: failurePolicy Fail denies
        raise ValueError(f"{expression!r} gave {result!r}")
    return bool(result)


def _matches(spec: Mapping[str, Any], req: Request) -> bool:
    unknown = set(spec) - {"failurePolicy", "matchConstraints", "matchConditions", "validations", "paramKind"}
    if unknown or set(spec["matchConstraints"]) - {"resourceRules"}:
        raise ValueError(f"not modelled: {sorted(unknown)} {sorted(spec['matchConstraints'])}")
    name = req.resource + (f"/{req.sub_resource}" if req.sub_resource else "")
    return any("" in r["apiGroups"] and "v1" in r["apiVersions"] and req.operation in r["operations"] and name in r["resources"]
               for r in spec["matchConstraints"]["resourceRules"])


def admits(spec: Mapping[str, Any], req: Request, params: Mapping[str, Any] | None = None, not_found: str = "Deny") -> bool:
    """Whether the policy (bound with validationActions [Deny]) lets the request through.
    `params`: the object its binding's paramRef names; None for a policy with a `paramKind`:
    not found. Then, as k8s.io/apiserver 1.32 does (validating/dispatcher.go: CollectParams,
    then Validate, which evaluates the match conditions): with the binding's
    parameterNotFoundAction (`not_found`) Allow the binding is not evaluated; with Deny it is a
    configuration error, which failurePolicy Fail turns into a denial of every request the rules
    match, the match conditions notwithstanding."""
    if not _matches(spec, req):
        return True
    activation = req.activation()
    if "paramKind" in spec:
        if params is None:
            return not_found == "Allow" or spec.get("failurePolicy", "Fail") != "Fail"
        activation["params"] = params
    if not all(_cel(c["expression"], activation) for c in spec.get("matchConditions") or []):
        return True
    try:
        return all(_cel(v["expression"], activation) for v in spec["validations"])
    except ValueError:
        return bool(spec.get("failurePolicy", "Fail") != "Fail")


def node(name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, labels: Mapping[str, str], annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "hybrid-ai"}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta}


def bound_policies(ev: Any, name: str | None = None) -> list[Mapping[str, Any]]:
    """The specs of the rendered ValidatingAdmissionPolicies (named `name`, else all) that a
    rendered binding enforces (Deny)."""
    from tools.render.write import reveal

    def of(kind: str) -> list[dict[str, Any]]:
        return [reveal(r.inputs) for r in ev.resources if r.type == f"kubernetes:admissionregistration.k8s.io/v1:{kind}"]
    enforced = {b["spec"]["policyName"] for b in of("ValidatingAdmissionPolicyBinding")
                if "Deny" in b["spec"].get("validationActions", []) and not b["spec"].get("matchResources")}
    specs: list[Mapping[str, Any]] = [p["spec"] for p in of("ValidatingAdmissionPolicy")
                                      if p["metadata"]["name"] in enforced and name in (None, p["metadata"]["name"])]
    return specs


def dev_policy(name: str) -> dict[str, Any]:
    """The spec of the dev stack's enforced ValidatingAdmissionPolicy `name` (exactly one)."""
    from tests.support.helpers import evaluate_config, stack_config

    policies = bound_policies(evaluate_config(stack_config("dev")), name)
    assert len(policies) == 1, policies
    return dict(policies[0])


def refused(spec: Mapping[str, Any], req: Request) -> bool:
    """Refused by a validation that evaluated to false, not by an evaluation error (which
    failurePolicy Fail would turn into a refusal too): under Ignore an error admits."""
    return not admits(dict(spec) | {"failurePolicy": "Ignore"}, req)
