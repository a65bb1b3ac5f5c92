"""The lab API server's flags come from MicroK8s 1.32's defaults, the addons the program enables,
and the program's own launch configuration and install script (tools/lab/kube_args.py)."""

from __future__ import annotations

import re

from tests.support.cluster_lab import SNAP_DATA, apiserver_drift, args_file
from tests.support.helpers import stack_config
from tests.support.kube import apiserver_flags
from tests.support.microk8s_host import APISERVER_DEFAULT_ARGS
from tools.lab.kube_args import INSTALL_SCRIPT, MICROK8S_DEFAULTS, admission_plugins, script_args


def test_dev_seed_flags_are_microk8s_with_rbac_and_the_stacks_networks() -> None:
    flags = apiserver_flags(stack_config("dev"))
    assert flags["--authorization-mode"] == "RBAC,Node"  # the rbac addon the seed enables
    assert {"EventRateLimit", "NodeRestriction"} <= admission_plugins(flags)  # MicroK8s' default (with its config), and ours
    assert flags["--service-cluster-ip-range"] == "10.152.183.0/24"
    assert flags["--advertise-address"] == "100.64.0.2"  # receipt, the seed: its VPN address (launch configuration)
    assert flags["--secure-port"] == "16443"


def test_another_service_cidr_reaches_the_flags() -> None:
    raw = stack_config("dev")
    raw["cluster"]["serviceCidr"] = "10.96.0.0/20"
    assert apiserver_flags(raw)["--service-cluster-ip-range"] == "10.96.0.0/20"


def test_script_args_reads_kube_apiserver_lines_only_with_their_parameters() -> None:
    script = '''
ensure_arg "$ARGS/kubelet" --node-ip "$NODE_IP" && { changed+=("node-ip"); restart=yes; }
  ensure_arg "$ARGS/kube-apiserver" --advertise-address "$NODE_IP" && { changed+=("advertise-address"); restart=yes; }
ensure_arg "$ARGS/kube-apiserver" --enable-admission-plugins EventRateLimit,NodeRestriction && restart=yes
# ensure_arg "$ARGS/kube-apiserver" --commented out
'''
    assert script_args(script, {"NODE_IP": "100.64.0.9"}) == {
        "--advertise-address": "100.64.0.9", "--enable-admission-plugins": "EventRateLimit,NodeRestriction"}


def test_every_kube_apiserver_line_of_the_install_script_is_read() -> None:
    text = INSTALL_SCRIPT.read_text()
    lines = [line for line in text.splitlines() if re.match(r'\s*ensure_arg "\$ARGS/kube-apiserver"', line)]
    assert lines, "the install script sets no kube-apiserver flag: check this test"
    found = script_args(text, {"NODE_IP": "100.64.0.2", "SERVICE_CIDR": "10.152.183.0/24"})
    assert len(found) == len({line.split()[2] for line in lines})
    flags = apiserver_flags(stack_config("dev"))
    assert all(flags[k] == v for k, v in found.items())


def test_the_standins_default_args_are_the_recorded_microk8s_defaults() -> None:
    written = args_file(APISERVER_DEFAULT_ARGS)
    assert written.pop("--admission-control-config-file") == f"{SNAP_DATA}/args/admission-control-config-file.yaml"
    assert written == MICROK8S_DEFAULTS
    # upstream's file quotes some values; kubelite's wrapper reads it as shell words
    upstream = "--service-account-issuer='https://kubernetes.default.svc'\n--etcd-servers=\"unix://${SNAP_DATA}/kine.sock:12379\"\n# aside\n"
    assert args_file(upstream) == {"--service-account-issuer": "https://kubernetes.default.svc",
                                   "--etcd-servers": f"unix://{SNAP_DATA}/kine.sock:12379"}


def test_the_running_flags_check_fails_on_a_flag_the_install_left_otherwise() -> None:
    running = apiserver_flags(stack_config("dev"))
    argv = ["/lab/bin/kube-apiserver", *(f"{k}={v}" for k, v in running.items()), "--etcd-servers=http://127.0.0.1:2379",
            "--tls-cert-file=/lab/pki/server.crt"]
    left = "".join(f"{k}={v}\n" for k, v in running.items()) + '--tls-cert-file="${SNAP_DATA}/certs/server.crt"\n'
    assert apiserver_drift(args_file(left), argv) == []  # the lab's own flags (datastore, paths) aside
    plugins = running["--enable-admission-plugins"]
    assert "NodeRestriction" in plugins
    reordered = left.replace(plugins, ",".join(reversed(plugins.split(","))))
    assert apiserver_drift(args_file(reordered), argv) == []  # a set of plugins
    without = left.replace(plugins, ",".join(p for p in plugins.split(",") if p != "NodeRestriction"))
    assert [d.split(":")[0] for d in apiserver_drift(args_file(without), argv)] == ["--enable-admission-plugins"]
    dropped = "".join(line + "\n" for line in left.splitlines() if not line.startswith("--advertise-address="))
    assert [d.split(":")[0] for d in apiserver_drift(args_file(dropped), argv)] == ["--advertise-address"]
    assert [d.split(":")[0] for d in apiserver_drift(args_file(left + "--anonymous-auth=false\n"), argv)] == ["--anonymous-auth"]
