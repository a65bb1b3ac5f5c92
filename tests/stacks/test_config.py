"""Config validation: the reference stacks pass; each bad config fails with one message that
names the config key and the fix, and the program registers nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stacks.config import StackConfig, derived_vpn_address
from stacks.load import ConfigError, validate
from tests.stacks.bad_configs import BAD, CROSS, Raw, host
from tests.stacks.bad_words import WORDS
from tests.support.helpers import PROJECT, evaluate_config, stack_config
from tools.render.evaluate import Evaluation


def test_hosts_behind_one_router_may_share_an_address_on_different_ssh_ports() -> None:
    raw = stack_config("dev")
    for port, h in ((2201, host(raw, "ws-1")), (2202, host(raw, "ws-2"))):
        h["existing"] = {"address": "203.0.113.50", "lanAddress": f"198.51.100.{port - 2180}"}
        h["ssh"]["port"] = port
    validate(raw)


def test_reference_stacks_are_valid() -> None:
    for stack in ("dev", "prod", "netmaker"):
        cfg = validate(stack_config(stack))
        assert isinstance(cfg, StackConfig)
        assert {h.name for h in cfg.hosts} == {"vpn-hub", "receipt", "interface", "ws-1", "ws-2"}


@pytest.mark.parametrize("stack", sorted(p.stem.split(".")[1] for p in PROJECT.glob("Pulumi.*.yaml")))
def test_every_example_stack_is_valid(stack: str) -> None:
    """Every Pulumi.<stack>.yaml shipped as an example passes validation (a TF model on the
    models volume with no `source` would keep TF-Serving from ever opening its ports)."""
    validate(stack_config(stack))


def test_there_are_at_least_twenty_distinct_bad_configs() -> None:
    assert len({case for case, *_ in BAD}) >= 20
    assert len({case for case, *_ in CROSS}) >= 30 and not {case for case, *_ in CROSS} & {case for case, *_ in BAD[:-len(CROSS)]}


@pytest.mark.parametrize(("case", "mutate", "key", "fix"), BAD + WORDS, ids=[b[0] for b in BAD + WORDS])
def test_bad_config_is_rejected_before_anything_is_registered(case: str, mutate: Callable[[Raw], None], key: str, fix: str) -> None:
    raw = stack_config("dev")
    mutate(raw)
    seen = Evaluation("test")
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, into=seen)
    problems = err.value.problems
    assert len(problems) == 1, f"{case}: expected one message, got {problems}"
    assert problems[0].startswith(key), problems[0]
    assert fix in problems[0], problems[0]
    assert seen.resources == [], f"{case}: resources were registered before the error"


def test_missing_secret_is_named_with_the_command_to_set_it() -> None:
    with pytest.raises(ConfigError) as err:
        evaluate_config(stack_config("dev"), secrets={})
    assert err.value.problems == [
        "hybrid-ai:sshPrivateKey: missing (needed by hosts[0].ssh.privateKeyConfig); "
        "set it with `pulumi config set --secret sshPrivateKey < FILE`"
    ]


def test_plaintext_private_key_is_rejected_without_echoing_it() -> None:
    import json

    from tests.support.helpers import NS
    from tools.render.evaluate import evaluate

    config = {f"{NS}:{k}": json.dumps(v) for k, v in stack_config("dev").items()}
    config[f"{NS}:sshPrivateKey"] = "PLAINTEXT-KEY-CANARY"
    with pytest.raises(ConfigError) as err:
        evaluate("test", config, set())
    assert "set it again with `pulumi config set --secret sshPrivateKey" in str(err.value)
    assert "PLAINTEXT-KEY-CANARY" not in str(err.value)


def test_unknown_top_level_key_is_rejected() -> None:
    raw = stack_config("dev")
    raw["host"] = []
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw)
    assert err.value.problems[0].startswith("hybrid-ai:host: unknown config key")


def test_rejections_never_echo_input_values() -> None:
    raw = stack_config("dev")
    raw["hosts"][0]["ssh"]["port"] = "SECRET-LOOKING-VALUE"
    with pytest.raises(ConfigError) as err:
        validate(raw)
    assert "SECRET-LOOKING-VALUE" not in str(err.value)


def test_derived_vpn_addresses_are_stable_and_independent_of_other_hosts() -> None:
    import ipaddress

    overlay = ipaddress.IPv4Network("100.64.0.0/16")
    first = derived_vpn_address("ws-7", overlay)
    assert first == derived_vpn_address("ws-7", overlay)
    raw = stack_config("dev")
    for h in raw["hosts"]:
        h.pop("vpnAddress")
    before = {h.name: validate(raw).vpn_address(h) for h in validate(raw).hosts}
    raw["hosts"].append(dict(host(raw, "ws-2"), name="ws-3", existing={"address": "198.51.100.23"}))
    after_cfg = validate(raw)
    after = {h.name: after_cfg.vpn_address(h) for h in after_cfg.hosts}
    assert {k: after[k] for k in before} == before
    assert all(a in overlay for a in after.values())


def test_config_reference_is_generated_from_the_schema() -> None:
    from tests.support.helpers import PROJECT
    from tools.docs import render

    assert (PROJECT / "docs" / "config.md").read_text() == render(), "docs/config.md is stale: run `make docs`"
    assert all(f"hybrid-ai:{(f.alias or n)}" in render() for n, f in StackConfig.model_fields.items())


def test_minimal_config_takes_every_default() -> None:
    # `firewall.adminCidrs` too: the API server is reached at a public address (the default), so
    # the host firewall must know who may reach it.
    raw = {k: v for k, v in stack_config("dev").items() if k in ("sites", "hosts", "firewall")}
    for h in raw["hosts"]:
        h.pop("gpu", None)
        h.pop("nvidia", None)
    cfg = validate(raw)
    assert cfg.ingress.tls == "none" and cfg.vpn.port == 51820 and cfg.cluster.channel == "1.32/stable"
    assert cfg.firewall.enabled


@pytest.mark.parametrize(("cpu", "memory"), [("500m", "16G"), ("2", "16Gi"), (2, "1.5Gi"), (0.5, "512M"), ("1.5", "2e9"), ("100m", "1048576")])
def test_quantities_are_read_as_kubernetes_reads_them(cpu: object, memory: str) -> None:
    raw = stack_config("dev")
    raw["models"][0].update(cpu=cpu, memory=memory)
    cfg = validate(raw)
    assert (cfg.models[0].cpu, cfg.models[0].memory) == (str(cpu), memory)  # into the manifest as written


def test_quantities_are_compared_by_size_whatever_the_unit() -> None:
    from tests.stacks.bad_configs import _sizes

    raw = stack_config("dev")
    _sizes(32768, 2048)(raw)
    raw["models"][0]["memory"] = "2G"  # 1907 MiB: fits a 2048 MB node
    validate(raw)
    raw["models"][0]["memory"] = "2.1G"  # 2003 MiB: still fits
    validate(raw)
    raw["models"][0]["memory"] = "3G"
    with pytest.raises(ConfigError, match=r"models\[0\]\.memory: 3G is more than any cloud node has"):
        validate(raw)


def test_no_rejection_shows_a_regular_expression() -> None:
    """Every pattern is a `strict` type with words; pydantic's `pattern=` would print the regex."""
    from pathlib import Path

    from tests.support.helpers import PROJECT

    for path in sorted(Path(PROJECT / "stacks" / "config").rglob("*.py")):
        text = path.read_text()
        assert "pattern=" not in text and "StringConstraints" not in text, f"{path}: use `strict(pattern, words)`"
    seen = []
    for _case, mutate, _key, _fix in BAD + WORDS:
        raw = stack_config("dev")
        mutate(raw)
        with pytest.raises(ConfigError) as err:
            validate(raw)
        seen += err.value.problems
    assert not [p for p in seen if "pattern" in p or "[a-z" in p or "[0-9" in p], seen


@pytest.mark.parametrize(("text", "value"), [("500m", "0.5"), ("16G", "16000000000"), ("16Gi", "17179869184"), ("1.5Ki", "1536"),
                                             ("2e3", "2000"), (".5", "0.5"), ("3.", "3"), ("1E-3", "0.001"), ("+7k", "7000")])
def test_quantity_grammar_is_kubernetes(text: str, value: str) -> None:
    from decimal import Decimal

    from components.kit.quantity import parse_quantity

    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["16gi", "16 Gi", "Gi", "1.2.3", "1e", "--1", "16GB", "0x10", "1_000", ""])
def test_quantities_kubernetes_refuses_are_refused(text: str) -> None:
    from components.kit.quantity import parse_quantity

    with pytest.raises(ValueError):
        parse_quantity(text)


def _render_problems(raw: Raw, secrets: dict[str, str] | None = None) -> list[str]:
    """The problems a render of this config reports (secrets the stack lacks get placeholders)."""
    import json

    from tools.render.evaluate import evaluate

    config = {f"hybrid-ai:{k}": json.dumps(v) for k, v in raw.items()} | {f"hybrid-ai:{k}": v for k, v in (secrets or {}).items()}
    with pytest.raises(ConfigError) as err:
        evaluate("test", config, {f"hybrid-ai:{k}" for k in secrets or {}}, fill_missing_secrets=True)
    return err.value.problems


def _renamed(old: str, new: str) -> Raw:
    raw = stack_config("dev")
    raw[new] = raw.pop(old)
    return raw


@pytest.mark.parametrize(("raw", "secrets", "line"), [
    (_renamed("hosts", "host"), None, "hybrid-ai:host: unknown config key; did you mean `hybrid-ai:hosts`? Rename it, or remove it"),
    (_renamed("timeSlicing", "timeslicing"), None, "hybrid-ai:timeslicing: unknown config key; did you mean `hybrid-ai:timeSlicing`?"),
    (stack_config("dev") | {"sshPrivatekey": "foo"}, None, "hybrid-ai:sshPrivatekey: unknown config key; did you mean `hybrid-ai:sshPrivateKey`?"),
    (stack_config("dev"), {"sshprivatekey": "KEY-CANARY"}, "hybrid-ai:sshprivatekey: unknown config key; did you mean `hybrid-ai:sshPrivateKey`?"),
], ids=["section missing", "section at its default", "secret in plain", "secret"])
def test_an_unknown_key_is_named_first_and_adds_no_false_error(raw: Raw, secrets: dict[str, str] | None, line: str) -> None:
    problems = _render_problems(raw, secrets)
    assert problems[0].startswith(line), problems
    assert not any("sshPrivateKey: missing" in p for p in problems), problems
    assert "KEY-CANARY" not in "".join(problems) and "foo" not in "".join(problems)
    if "hosts" in raw and "timeSlicing" in raw:  # the rest of the config is valid: nothing else to say
        assert problems == problems[:1]


@pytest.mark.parametrize(("change", "line"), [
    (lambda raw: raw["sites"][1].pop("lanCidr"),
     "hybrid-ai:sites[1] (office): ws-1, ws-2 have no LAN address (`sites[1].lanCidr` is not set), so traffic between this "
     "site's hosts goes through the VPN hub; set `sites[1].lanCidr` or `hosts[3].existing.lanAddress`"),
    (lambda raw: host(raw, "ws-2")["existing"].update(address="198.51.100.210"),
     "hybrid-ai:sites[1] (office): ws-2 has no LAN address (its `address` is outside `sites[1].lanCidr`), so traffic "
     "between this site's hosts goes through the VPN hub; correct `hosts[4].existing.address` or set its `lanAddress`"),
], ids=["no lanCidr", "address outside it"])
def test_two_hosts_of_a_site_without_a_lan_path_get_a_warning(change: Callable[[Raw], object], line: str) -> None:
    raw = stack_config("dev")
    assert not evaluate_config(raw).warnings
    change(raw)
    assert evaluate_config(raw).warnings == [line]
