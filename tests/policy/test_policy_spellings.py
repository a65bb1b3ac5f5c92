"""The policy pack against other spellings of the same thing: property-based where the
spellings are many."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi_policy import ResourceValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

from tests.policy.conftest import resource_args, rules, stack_args, violations
from tests.support.helpers import evaluate_config, stack_config
from tools.render.evaluate import Evaluation
from tools.render.write import reveal

SPELLINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def world_prefixes(draw: st.DrawFn) -> str | None:
    """Spellings of 'every address' or of a prefix covering a large part of the internet."""
    kind = draw(st.sampled_from(["none", "empty", "v4", "v6", "mapped", "shorthand"]))
    if kind == "none":
        return None
    if kind == "empty":
        return ""
    if kind == "shorthand":
        return draw(st.sampled_from(["0/0", "0.0/0", "0.0.0/0", "0/1", "10/4", " 0.0.0.0/0 "]))
    if kind == "v4":
        length, bits, limit = draw(st.integers(0, rules.WIDEST_IPV4 - 1)), 32, 4
    elif kind == "v6":
        length, bits, limit = draw(st.integers(0, rules.WIDEST_IPV6 - 1)), 128, 6
    else:
        length = 96 + draw(st.integers(0, rules.WIDEST_IPV4 - 1))
        return f"::ffff:{draw(st.integers(0, 255))}.0.0.0/{length}"
    address = draw(st.integers(0, 2**bits - 1))
    text = str(ipaddress.IPv4Address(address) if limit == 4 else ipaddress.IPv6Address(address))
    return f"{text}/{length}"  # host bits set, as people write it


def _ssh_rule_with(prod: Evaluation, prefix: str | None) -> Evaluation:
    ev = copy.deepcopy(prod)
    ssh = next(r for r in ev.resources if r.name == "openstack-base-ssh-0")
    ssh.inputs.pop("remoteIpPrefix", None)
    ssh.inputs.pop("remoteGroupId", None)
    if prefix is not None:
        ssh.inputs["remoteIpPrefix"] = prefix
    return ev


@SPELLINGS
@given(world_prefixes())
def test_every_spelling_of_the_world_is_the_world(prod: Evaluation, prefix: str | None) -> None:
    (message,) = violations(rules.no_world_open_ports, stack_args(_ssh_rule_with(prod, prefix)))
    assert message.startswith("openstack-base-ssh-0: opens tcp 22-22 to the world")


@SPELLINGS
@given(st.sampled_from(["192.0.2.0/24", "198.51.100.7/32", "2001:db8::/48", "10.0.0.0/8", "203.0.113.0/25"]))
def test_narrow_prefixes_and_remote_groups_are_not_the_world(prod: Evaluation, prefix: str) -> None:
    assert violations(rules.no_world_open_ports, stack_args(_ssh_rule_with(prod, prefix))) == []
    grouped = _ssh_rule_with(prod, None)
    next(r for r in grouped.resources if r.name == "openstack-base-ssh-0").inputs["remoteGroupId"] = "admins-group-id"
    assert violations(rules.no_world_open_ports, stack_args(grouped)) == []


@st.composite
def unpinned_images(draw: st.DrawFn) -> str:
    repo = draw(st.sampled_from(["ghcr.io/example/api", "api", "localhost:5000/api", "docker.io/library/redis"]))
    latest = "".join(draw(st.sampled_from([c, c.upper()])) for c in "latest")
    suffix = draw(st.sampled_from([
        "", ":", f":{latest}", "@sha256:", "@sha256:" + "a" * draw(st.integers(0, 63)), "@sha256:" + "A" * 64,
        "@sha512:" + "a" * 64, ":1.0 ", ":-bad", "@" + "a" * 64,
    ]))
    return draw(st.sampled_from([repo + suffix, repo.upper() + ":1.0"]))


@SPELLINGS
@given(unpinned_images(), st.sampled_from(rules.CONTAINER_LISTS))
def test_every_spelling_of_an_unpinned_image_is_rejected_in_every_container_list(dev: Evaluation, image: str, where: str) -> None:
    props = reveal(dev.by_name("receipt-api-deployment").inputs)
    pod = props["spec"]["template"]["spec"]
    pod[where] = [{"name": "sneaky", "image": image}]
    found = violations(rules.images_pinned, resource_args(dev, "receipt-api-deployment", props))
    assert [m for m in found if "'sneaky'" in m], image


@SPELLINGS
@given(st.sampled_from(["https", "HTTPS", "Https"]), st.sampled_from(["acme-v02.api.letsencrypt.org", "ACME-V02.API.LETSENCRYPT.ORG"]),
       st.sampled_from(["", ":443"]), st.sampled_from(["", "/", "//"]), st.sampled_from(["ClusterIssuer", "Issuer"]))
def test_every_spelling_of_the_production_issuer_is_it(dev: Evaluation, scheme: str, host: str, port: str, slash: str, kind: str) -> None:
    props = reveal(dev.by_name("ingress-issuer").inputs)
    props["spec"]["acme"]["server"] = f"{scheme}://{host}{port}/directory{slash}"
    r = dev.by_name("ingress-issuer")
    args = ResourceValidationArgs(f"kubernetes:cert-manager.io/v1:{kind}", unknown_checking_proxy(props), r.urn, r.name, None, None, None)  # type: ignore[arg-type]
    (message,) = violations(rules.production_issuer_only_on_production, args)
    assert "production issuer on stack 'dev'" in message


@SPELLINGS
@given(st.sampled_from([None, "", " ", "\t\n", "ssh-ed25519", "ssh-ed25519 ", "AAAAC3NzaC1lZDI1NTE5AAAAI", "ssh-dss AAAAB3Nza"]),
       st.sampled_from(["target", "proxy"]))
def test_blank_or_malformed_host_keys_pin_nothing(dev: Evaluation, key: str | None, where: str) -> None:
    props = reveal(dev.by_name("ws-1-bootstrap-base").inputs)
    conn = props["connection"]
    if where == "proxy":
        conn["proxy"] = {k: conn[k] for k in ("host", "user", "privateKey")}
        conn = conn["proxy"]
    conn.pop("hostKey", None)
    if key is not None:
        conn["hostKey"] = key
    (message,) = violations(rules.ssh_host_key_pinned, resource_args(dev, "ws-1-bootstrap-base", props))
    assert ("jump host" in message) == (where == "proxy")


def test_a_jump_host_is_pinned_to_its_own_key() -> None:
    raw = stack_config("dev")
    ws1 = next(h for h in raw["hosts"] if h["name"] == "ws-1")
    jump = next(h for h in raw["hosts"] if h["name"] == "ws-2")  # a jump host on ws-1's own site
    ws1["ssh"]["jumpHost"] = "ws-2"
    ev = evaluate_config(raw, stack="dev")
    address = ws1["existing"]["address"]
    commands = [r for r in ev.resources if r.type == "command:remote:Command" and reveal(r.inputs["connection"])["host"] == address]
    assert len(commands) >= 5
    for r in commands:
        proxy = reveal(r.inputs["connection"])["proxy"]
        assert proxy["hostKey"] == jump["ssh"]["hostKey"], r.name
        assert violations(rules.ssh_host_key_pinned, resource_args(ev, r.name)) == []


def test_commands_take_no_environment(dev: Evaluation) -> None:
    props = reveal(dev.by_name("cluster-ws-1-join").inputs) | {"environment": {"JOIN_TOKEN": "abc"}}
    (message,) = violations(rules.no_command_environment, resource_args(dev, "cluster-ws-1-join", props))
    assert "passes `environment` (JOIN_TOKEN)" in message


# --- Review 2 #7: the same thing by another resource type, label or number of rules -------------

def _as_type(ev: Evaluation, name: str, resource_type: str, props: dict[str, Any]) -> ResourceValidationArgs:
    r = ev.by_name(name)
    return ResourceValidationArgs(resource_type, unknown_checking_proxy(props), r.urn, r.name, None, None, None)  # type: ignore[arg-type]


def test_patch_types_and_other_api_versions_are_checked_like_their_base_types(dev: Evaluation) -> None:
    deployment = reveal(dev.by_name("receipt-api-deployment").inputs)
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "evil/img:latest"
    (message,) = violations(rules.images_pinned, _as_type(dev, "receipt-api-deployment", "kubernetes:apps/v1:DeploymentPatch", deployment))
    assert "without a version tag or digest" in message
    issuer = reveal(dev.by_name("ingress-issuer").inputs)
    issuer["spec"]["acme"]["server"] = rules.LETSENCRYPT_PRODUCTION
    for spelled in ("kubernetes:cert-manager.io/v1:ClusterIssuerPatch", "kubernetes:cert-manager.io/v1alpha2:ClusterIssuer",
                    "kubernetes:cert-manager.io/v1:IssuerPatch"):
        (message,) = violations(rules.production_issuer_only_on_production, _as_type(dev, "ingress-issuer", spelled, issuer))
        assert "production issuer on stack 'dev'" in message, spelled


@pytest.mark.parametrize("resource_type", ["kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:ConfigMapPatch"])
def test_a_time_slicing_config_is_recognised_by_its_content_not_its_label(dev: Evaluation, resource_type: str) -> None:
    props = reveal(dev.by_name("gpu-sharing-config").inputs)
    props["metadata"].pop("labels", None)
    props["data"] = {k: v.replace("replicas: 4", "replicas: 64") for k, v in props["data"].items()}
    assert all("replicas: 64" in v for v in props["data"].values())
    (message,) = violations(rules.time_slicing_replicas_bounded, _as_type(dev, "gpu-sharing-config", resource_type, props))
    assert "shares each GPU among 64 pods" in message
    props["data"] = {"other": "not: [yaml", "plain": "sharing: 3", "list": "- a"}
    assert violations(rules.time_slicing_replicas_bounded, _as_type(dev, "gpu-sharing-config", resource_type, props)) == []


@pytest.mark.parametrize("resource_type", ["command:remote:CopyFile", "command:remote:Copy", "command:remote:CopyToRemote"])
def test_every_remote_type_that_dials_pins_a_host_key(dev: Evaluation, resource_type: str) -> None:
    connection = reveal(dev.by_name("ws-1-bootstrap-base").inputs)["connection"]
    connection.pop("hostKey")
    props = {"connection": connection, "localPath": "/etc/passwd", "remotePath": "/tmp/x"}
    (message,) = violations(rules.ssh_host_key_pinned, _as_type(dev, "ws-1-bootstrap-base", resource_type, props))
    assert "does not pin a host key" in message


def test_the_world_in_many_narrow_rules_is_the_world(prod: Evaluation) -> None:
    ev = copy.deepcopy(prod)
    ssh = ev.by_name("openstack-base-ssh-0")
    for i in range(256):
        rule = copy.deepcopy(ssh)
        rule.name, rule.urn = f"{ssh.name}-split-{i}", f"{ssh.urn}-split-{i}"
        rule.inputs["remoteIpPrefix"] = f"{i}.0.0.0/8"
        ev.resources.append(rule)
    found = violations(rules.no_world_open_ports, stack_args(ev))
    assert len(found) == 257 and all("opens tcp 22-22 to the world" in m and "with its group's other rules" in m for m in found)
    # Two neighbouring /8s are a /7, wider than a /8: the world by the pack's rule; every other /8 is not.
    ev.resources = [r for r in ev.resources if "-split-" not in r.name or int(r.name.rsplit("-", 1)[1]) % 2 == 0]
    assert violations(rules.no_world_open_ports, stack_args(ev)) == []
    ev.resources.append(next(r for r in copy.deepcopy(ev.resources) if r.name.endswith("-split-0")))
    ev.resources[-1].name, ev.resources[-1].urn, ev.resources[-1].inputs["remoteIpPrefix"] = "neighbour", "urn:neighbour", "1.0.0.0/8"
    assert len(violations(rules.no_world_open_ports, stack_args(ev))) == 130


def test_only_the_programs_web_only_ingress_group_may_open_80_and_443(prod: Evaluation) -> None:
    renamed = copy.deepcopy(prod)
    renamed.by_name("openstack-ingress").inputs["description"] = "db-ingress"
    assert len(violations(rules.no_world_open_ports, stack_args(renamed))) == 2
    shared = copy.deepcopy(prod)
    db = copy.deepcopy(shared.by_name("openstack-ingress-443"))
    db.name, db.urn = "openstack-ingress-5432", db.urn.replace("openstack-ingress-443", "openstack-ingress-5432")
    db.inputs |= {"portRangeMin": 5432, "portRangeMax": 5432, "remoteIpPrefix": "198.51.100.0/26"}
    shared.resources.append(db)
    found = sorted(violations(rules.no_world_open_ports, stack_args(shared)))
    assert [m.split(":")[0] for m in found] == ["openstack-ingress-443", "openstack-ingress-80"]
