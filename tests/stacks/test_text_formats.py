"""Config values that end up in text formats other than shell (protobuf text, YAML, INI-style
WireGuard configs, kubelet/Kubernetes fields) are either rejected at the schema with one line
naming the key, or written so that the text parses back to exactly the value.

Hostile strings: quotes, newlines, `$()`, YAML and protobuf specials, unicode, very long."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.workloads.tf_serving import TfModel, models_config
from stacks.load import ConfigError, validate
from tests.support.helpers import evaluate_config, stack_config, taint_gpu_host

Raw = dict[str, Any]
EVIL = ['"', "'", "\n", "\r\n", "\\", "\\n", "$(reboot)", "`id`", "${HOME}", ": ", "#", "- x", "{", "}", "[", "]", "&a", "*a",
        "!!python/object:os.system", "|", ">", "%", "\x00", "\x1b[2J", "\u2028", "\ufeff", "é", "\uff57\uff53", " ", "\t", ";", "=", ",",
        "\" }\n  config { name: \"evil\" base_path: \"/\"", "\n[Interface]\nPostUp = id", "\n---\nkind: Pod", "x" * 300]
# What an accepted value may contain: nothing that means something in YAML, TOML, INI,
# systemd units or protobuf text (no quotes, whitespace, comment or structure characters).
PLAIN = re.compile(r"[A-Za-z0-9._/:@%+-]*")


def hostile(valid: str) -> st.SearchStrategy[str]:
    """A valid value with something hostile around or inside it, or any text at all."""
    evil = st.sampled_from(EVIL)
    return st.one_of(
        st.builds(lambda e: valid + e, evil),
        st.builds(lambda e: e + valid, evil),
        st.builds(lambda e, i: valid[:i] + e + valid[i:], evil, st.integers(0, len(valid))),
        st.text(min_size=1, max_size=80),
    )


def at(*path: Any) -> Callable[[Raw, str], None]:
    def put(raw: Raw, value: str) -> None:
        node: Any = raw
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return put


def _site_name(raw: Raw, value: str) -> None:
    raw["sites"][1]["name"] = value
    for h in raw["hosts"][3:]:
        h["site"] = value


def _profile_name(raw: Raw, value: str) -> None:
    raw["timeSlicing"]["profiles"][0]["name"] = raw["timeSlicing"]["defaultProfile"] = value


def _label_key(raw: Raw, value: str) -> None:
    raw["hosts"][3]["labels"] = {value: "x"}


def _taint(field: str) -> Callable[[Raw, str], None]:
    def put(raw: Raw, value: str) -> None:
        taint_gpu_host(raw, raw["hosts"][3]["name"], [{"key": "example.com/gpu", "value": "x", "effect": "NoSchedule"} | {field: value}])
    return put


def _registry_server(raw: Raw, value: str) -> None:
    raw["registry"] = {"server": value, "username": "bot", "passwordConfig": "registryPassword"}
    for m in raw["models"]:  # cloud models from that registry pull by digest
        if m.get("placement") == "cloud" and "image" in m:
            m["image"] = m["image"].rsplit(":", 1)[0] + "@sha256:" + "4" * 64


def _netmaker(field: str) -> Callable[[Raw, str], None]:
    """Netmaker values reach the hub's compose file and Caddyfile (heredocs in netmaker-server.sh)."""
    def put(raw: Raw, value: str) -> None:
        raw["vpn"] |= {"backend": "netmaker", "netmaker": {"domain": "nm.example.com", "version": "v0.90.0"} | {field: value}}
        raw["hosts"][0]["size"] = {"cpus": 2, "memoryMb": 4096}
    return put


# (config key the error must name, valid value, how to put a value there)
PATHS: list[tuple[str, str, Callable[[Raw, str], None]]] = [
    ("hybrid-ai:hosts[3].name", "ws-1", at("hosts", 3, "name")),
    ("hybrid-ai:sites[1].name", "office", _site_name),
    ("hybrid-ai:hosts[3].existing.address", "198.51.100.21", at("hosts", 3, "existing", "address")),
    ("hybrid-ai:hosts[2].existing.publicAddress", "203.0.113.12", at("hosts", 2, "existing", "publicAddress")),
    ("hybrid-ai:hosts[2].existing.lanAddress", "192.0.2.12", at("hosts", 2, "existing", "lanAddress")),
    ("hybrid-ai:hosts[3].ssh.user", "ubuntu", at("hosts", 3, "ssh", "user")),
    ("hybrid-ai:hosts[3].gpu.model", "rtx-3090", at("hosts", 3, "gpu", "model")),
    ("hybrid-ai:hosts[3].labels", "example.com/team", _label_key),
    ("hybrid-ai:hosts[3].labels.team", "ml-ops", lambda raw, v: raw["hosts"][3].update(labels={"team": v})),
    ("hybrid-ai:hosts[3].taints[0].key", "example.com/gpu", _taint("key")),
    ("hybrid-ai:hosts[3].taints[0].value", "shared", _taint("value")),
    ("hybrid-ai:models[0].name", "receipt-api", at("models", 0, "name")),
    ("hybrid-ai:models[3].name", "ocr-detector", at("models", 3, "name")),
    ("hybrid-ai:models[3].tf.basePath", "/models/ocr-detector", at("models", 3, "tf", "basePath")),
    ("hybrid-ai:models[0].image", "ghcr.io/example/receipt-api:1.4.2", at("models", 0, "image")),
    ("hybrid-ai:models[0].publicPath", "/receipt", at("models", 0, "publicPath")),
    ("hybrid-ai:models[0].healthPath", "/healthz", at("models", 0, "healthPath")),
    ("hybrid-ai:ingress.domain", "api.example.com", at("ingress", "domain")),
    ("hybrid-ai:ingress.acmeEmail", "ops@example.com", at("ingress", "acmeEmail")),
    ("hybrid-ai:timeSlicing.profiles[0].name", "rtx-3090", _profile_name),
    ("hybrid-ai:cluster.namespace", "hybrid-ai", at("cluster", "namespace")),
    ("hybrid-ai:cluster.channel", "1.32/stable", at("cluster", "channel")),
    ("hybrid-ai:registry.server", "ghcr.io", _registry_server),
    ("hybrid-ai:vpn.netmaker.domain", "nm.example.com", _netmaker("domain")),
    ("hybrid-ai:vpn.netmaker.version", "v0.90.0", _netmaker("version")),
    ("hybrid-ai:vpn.netmaker.network", "hybrid-ai", _netmaker("network")),
    ("hybrid-ai:cluster.imagePullTimeout", "30m", at("cluster", "imagePullTimeout")),  # kubelet args file
    ("hybrid-ai:hosts[3].nvidia.driverVersion", "535", lambda raw, v: raw["hosts"][3].update(nvidia={"driverVersion": v})),
]
IDS = [p[0].removeprefix("hybrid-ai:") for p in PATHS]
DEV = stack_config("dev")


@pytest.mark.parametrize(("key", "valid", "put"), PATHS, ids=IDS)
def test_the_valid_value_is_accepted(key: str, valid: str, put: Callable[[Raw, str], None]) -> None:
    raw = copy.deepcopy(DEV)
    put(raw, valid)
    validate(raw)  # the property below would be vacuous if the base value were rejected


@pytest.mark.parametrize(("key", "valid", "put"), PATHS, ids=IDS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_value_is_rejected_naming_its_key_or_is_plain(key: str, valid: str, put: Callable[[Raw, str], None], data: st.DataObject) -> None:
    value = data.draw(hostile(valid))
    raw = copy.deepcopy(DEV)
    put(raw, value)
    try:
        validate(raw)
    except ConfigError as err:
        mine = [p for p in err.problems if p.startswith(key)]
        assert mine, f"{value!r}: {err.problems}"
        assert all("\n" not in p and "\r" not in p and len(p) < 400 for p in err.problems), err.problems
        return
    assert PLAIN.fullmatch(value) and value.isascii(), f"{key} accepted {value!r}"


def _model_server_config() -> type[Message]:
    """TF-Serving's ModelServerConfig (tensorflow_serving/config/model_server_config.proto), the
    fields models.config uses, so the test parses the file as TF-Serving's TextFormat parser does."""
    f = descriptor_pb2.FileDescriptorProto(name="test_tf_serving_config.proto", package="tensorflow.serving", syntax="proto3")
    label, optional, repeated = descriptor_pb2.FieldDescriptorProto, 1, 3
    specific = f.message_type.add(name="Specific")
    specific.field.add(name="versions", number=1, type=label.TYPE_INT64, label=repeated)
    policy = f.message_type.add(name="ServableVersionPolicy")
    policy.field.add(name="specific", number=102, type=label.TYPE_MESSAGE, label=optional, type_name=".tensorflow.serving.Specific")
    config = f.message_type.add(name="ModelConfig")
    config.field.add(name="name", number=1, type=label.TYPE_STRING, label=optional)
    config.field.add(name="base_path", number=2, type=label.TYPE_STRING, label=optional)
    config.field.add(name="model_platform", number=4, type=label.TYPE_STRING, label=optional)
    config.field.add(name="model_version_policy", number=7, type=label.TYPE_MESSAGE, label=optional,
                     type_name=".tensorflow.serving.ServableVersionPolicy")
    listing = f.message_type.add(name="ModelConfigList")
    listing.field.add(name="config", number=1, type=label.TYPE_MESSAGE, label=repeated, type_name=".tensorflow.serving.ModelConfig")
    server = f.message_type.add(name="ModelServerConfig")
    server.field.add(name="model_config_list", number=1, type=label.TYPE_MESSAGE, label=optional,
                     type_name=".tensorflow.serving.ModelConfigList")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    server_config: type[Message] = message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.ModelServerConfig"))
    return server_config


SERVER_CONFIG = _model_server_config()


def parse_models_config(text: str) -> list[tuple[str, str, list[int]]]:
    msg: Any = text_format.Parse(text, SERVER_CONFIG())
    return [(c.name, c.base_path, list(c.model_version_policy.specific.versions)) for c in msg.model_config_list.config]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=300), st.text(max_size=300), st.integers(1, 2**40)), min_size=1, max_size=4))
def test_models_config_parses_back_to_exactly_its_models(models: list[tuple[str, str, int]]) -> None:
    """Defence in depth below the schema: whatever the strings, one entry per model, exact values."""
    text = models_config([TfModel(n, p, v) for n, p, v in models])
    assert sorted(parse_models_config(text)) == sorted((n, p, [v]) for n, p, v in models)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile("/models/ocr-detector"))
def test_hostile_base_path_through_the_program(path: str) -> None:
    raw = copy.deepcopy(DEV)
    raw["models"][3]["tf"]["basePath"] = path
    try:
        ev = evaluate_config(raw)
    except ConfigError as err:
        # Refused naming the key: as no model path, or (the example model has a `source`) as no path under /models.
        assert [p for p in err.problems if p.startswith("hybrid-ai:models[3].tf.basePath: ")], err.problems
        return
    (config_map,) = [r for r in ev.resources if r.name == "tf-serving-models"]
    parsed = parse_models_config(config_map.inputs["data"]["models.config"])
    assert ("ocr-detector", path, [3]) in parsed and len(parsed) == 2


def test_models_config_with_every_allowed_character_parses_back() -> None:
    raw = copy.deepcopy(DEV)
    raw["models"][3]["tf"]["basePath"] = "/models/Models_v2.ocr-detector_3"
    ev = evaluate_config(raw)
    (config_map,) = [r for r in ev.resources if r.name == "tf-serving-models"]
    assert ("ocr-detector", "/models/Models_v2.ocr-detector_3", [3]) in parse_models_config(config_map.inputs["data"]["models.config"])


@pytest.mark.parametrize(("key", "put"), [(k, p) for k, _, p in PATHS if k.endswith(("ddress", "address"))], ids=lambda x: x if isinstance(x, str) else "")
def test_scoped_ipv6_zone_cannot_carry_text_into_configs(key: str, put: Callable[[Raw, str], None]) -> None:
    """Python's ipaddress takes any zone text ('fe80::1%<anything>'); these addresses become
    WireGuard `Endpoint =` lines on other hosts."""
    raw = copy.deepcopy(DEV)
    put(raw, "fe80::1%eth0\n[Interface]\nPostUp = id")
    with pytest.raises(ConfigError) as err:
        validate(raw)
    assert [p for p in err.value.problems if p.startswith(key) and "scoped IPv6" in p], err.value.problems


def test_a_shown_key_stays_short_even_when_its_characters_need_escapes() -> None:
    from stacks.load import shown
    # Found by hypothesis: each non-BMP character quotes as 12 characters, a control one as 6.
    for text in ["\x1f" + "\U00010000" * 16, "\n" * 50, "é" * 100, "a" * 200]:
        quoted = shown(text)
        assert len(quoted) <= 40 and "\n" not in quoted, quoted
    assert shown("ws-1") == '"ws-1"'
