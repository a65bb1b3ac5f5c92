"""The CrossGuard policy pack: each policy passes on the real plans and fails on a bad resource;
unknown values (preview) make a policy skip, never pass or fail wrongly."""

from __future__ import annotations

import copy

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from tests.policy.conftest import RESOURCE_RULES, resource_args, rules, stack_args, violations
from tests.support.helpers import evaluate_config, stack_config
from tools.render.evaluate import Evaluation
from tools.render.write import reveal


@pytest.mark.parametrize("stack", ["dev", "prod", "ha", "netmaker"])
def test_the_reference_plans_pass_every_policy(stack: str, dev: Evaluation, prod: Evaluation) -> None:
    ev = {"dev": dev, "prod": prod}.get(stack) or evaluate_config(stack_config(stack), stack=stack)
    for r in ev.resources:
        for check in RESOURCE_RULES:
            assert violations(check, resource_args(ev, r.name)) == [], (check.__name__, r.name)
    assert violations(rules.no_world_open_ports, stack_args(ev)) == []


def test_ssh_host_key_must_be_pinned(dev: Evaluation) -> None:
    props = reveal(dev.by_name("ws-1-bootstrap-base").inputs)
    props["connection"].pop("hostKey")
    (message,) = violations(rules.ssh_host_key_pinned, resource_args(dev, "ws-1-bootstrap-base", props))
    assert "does not pin a host key" in message


def test_secret_on_stdin_must_not_be_logged(dev: Evaluation) -> None:
    props = reveal(dev.by_name("cluster-ws-1-join").inputs)
    props["logging"] = "stdoutAndStderr"
    (message,) = violations(rules.secrets_kept_out_of_logs, resource_args(dev, "cluster-ws-1-join", props))
    assert "takes a secret on stdin but logs 'stdoutAndStderr'" in message
    props.pop("logging")  # the provider's default logs both
    assert violations(rules.secrets_kept_out_of_logs, resource_args(dev, "cluster-ws-1-join", props))


@pytest.mark.parametrize("image", ["ghcr.io/example/receipt-api", "ghcr.io/example/receipt-api:latest", "localhost:5000/api"])
def test_images_must_be_pinned(dev: Evaluation, image: str) -> None:
    props = reveal(dev.by_name("receipt-api-deployment").inputs)
    props["spec"]["template"]["spec"]["containers"][0]["image"] = image
    (message,) = violations(rules.images_pinned, resource_args(dev, "receipt-api-deployment", props))
    assert "without a version tag or digest" in message


def test_digests_and_registry_ports_count_as_pinned(dev: Evaluation) -> None:
    props = reveal(dev.by_name("receipt-api-deployment").inputs)
    for image in ("localhost:5000/api:1.0.0", "ghcr.io/x/api@sha256:" + "a" * 64):
        props["spec"]["template"]["spec"]["containers"][0]["image"] = image
        assert violations(rules.images_pinned, resource_args(dev, "receipt-api-deployment", props)) == []


def test_production_issuer_only_on_production_stacks(dev: Evaluation, prod: Evaluation) -> None:
    props = reveal(dev.by_name("ingress-issuer").inputs)
    props["spec"]["acme"]["server"] = rules.LETSENCRYPT_PRODUCTION
    (message,) = violations(rules.production_issuer_only_on_production, resource_args(dev, "ingress-issuer", props))
    assert "production issuer on stack 'dev'" in message
    ok = violations(rules.production_issuer_only_on_production, resource_args(dev, "ingress-issuer", props, {"productionStacks": ["dev"]}))
    assert ok == []
    assert violations(rules.production_issuer_only_on_production, resource_args(prod, "ingress-issuer")) == []


def test_time_slicing_replicas_within_the_maximum(dev: Evaluation) -> None:
    args = resource_args(dev, "gpu-sharing-config", config={"maxTimeSlicingReplicas": 2})
    (message,) = violations(rules.time_slicing_replicas_bounded, args)
    assert "profile 'rtx-3090' shares each GPU among 4 pods, more than the configured maximum of 2" in message


def test_world_open_ports_beyond_vpn_and_ingress_are_rejected(prod: Evaluation) -> None:
    ev = copy.deepcopy(prod)
    ssh = next(r for r in ev.resources if r.name == "openstack-base-ssh-0")
    ssh.inputs["remoteIpPrefix"] = "0.0.0.0/0"
    https_on_base = next(r for r in ev.resources if r.name == "openstack-ingress-443")
    https_on_base.dependencies = [u for u in https_on_base.dependencies if not u.endswith("::openstack-ingress")]
    https_on_base.dependencies.append(ev.by_name("openstack-base").urn)
    found = sorted(violations(rules.no_world_open_ports, stack_args(ev)))
    assert len(found) == 2
    assert found[0].startswith("openstack-base-ssh-0: opens tcp 22-22 to the world")
    assert found[1].startswith("openstack-ingress-443: opens tcp 443-443 to the world")


def test_unknown_values_make_policies_skip_not_decide(dev: Evaluation) -> None:
    unknown_connection = reveal(dev.by_name("ws-1-bootstrap-base").inputs) | {"connection": UNKNOWN_STRING_VALUE}
    with pytest.raises(UnknownValueError):
        violations(rules.ssh_host_key_pinned, resource_args(dev, "ws-1-bootstrap-base", unknown_connection))
    props = reveal(dev.by_name("receipt-api-deployment").inputs)
    props["spec"]["template"]["spec"]["containers"][0]["image"] = UNKNOWN_STRING_VALUE
    with pytest.raises(UnknownValueError):
        violations(rules.images_pinned, resource_args(dev, "receipt-api-deployment", props))



# --- The same thing spelled differently ---------------------------------------------------------

