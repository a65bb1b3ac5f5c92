"""The lab's MicroK8s stand-in (tests only, never installed for users): the `snap` and `microk8s`
commands of a namespace lab host (tests/support/engine_lab.py puts two wrappers on its PATH,
/usr/local/sbin), with MicroK8s 1.32's files at their production paths
(/var/snap/microk8s/{current,common}: a private /var layer of the host) and the lab's real
control plane (tools/lab/kube.py) as the cluster's API server.

What it does as MicroK8s 1.32 does (docs/upstream.md lists each fact and its test):
- `snap install microk8s --classic --channel=C` lays out the default args, applies the first
  launch configuration found (tests/support/microk8s_fake.py `launch`: args, csr.conf.template,
  addons), and issues a real `certs/server.crt` from the template with the cluster's CA, which
  the lab's API server then serves (as kubelite does once started; `refresh-certs` too). On the
  control-plane host (the one whose lab wiring names the API server's CA) it also writes the admin
  `credentials/client.config` (CN=admin,O=system:masters) and the kubelet's own, and the kubelet registers its Node.
- `microk8s add-node --token-ttl N --format token` appends `token|expiry` to
  credentials/cluster-tokens.txt; `microk8s join IP:25000/TOKEN [--worker]` asks the seed's
  cluster-agent (tests/support/microk8s_agent.py, over the network: the VPN, the agent guard)
  and fails as upstream does when the token is unknown or expired; on success the seed's kubelet
  args replace the worker's, the kubelet gets its certificate signed there, its labels and node IP
  as join.py sets them, and registers its Node (kwok-managed: pods go Ready on it).
- `microk8s kubectl` is the real kubectl with the admin client config; `remove-node` deletes a
  Node that exists and posts an InternalIP, else fails; `leave` undoes a worker's join markers
  (refused where the wrapper refuses, and on a control plane: leave.py would reset its datastore);
  `config` prints client.config with 127.0.0.1 replaced by the default interface's address.
- `snap restart microk8s.daemon-kubelite` restarts the kubelet: it posts its node IP again;
  `snap remove microk8s --purge` removes every file of the snap (on the control plane every Node).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.support.microk8s_host import (
    APISERVER_DEFAULT_ARGS,
    BOOK,
    CNI_MANIFEST,
    CONTAINERD_TEMPLATE,
    CSR_TEMPLATE,
    KUBELET_ARGS,
    REVISION,
    SNAP,
    SNAP_COMMON,
    SNAP_DATA,
    WIRING,
    WORKER_LABELS,
    agent_post,
    default_address,
    hostname,
    kubeconfig_text,
    kubectl,
    kubelet_posts,
    set_arg,
    wiring,
)

# A fresh process runs for every `snap` and `microk8s` call of a host script (most are `microk8s
# kubectl` and `status`, which need little): install, join and the certificates import what they
# need themselves (cryptography, yaml, urllib: a tenth of a second of CPU a call otherwise).


def installed() -> bool:
    return BOOK.exists()


def fail(message: str, code: int = 1) -> int:
    """Printed, and kept in the host's lab state (the join step hides the join's output)."""
    print(message, file=sys.stderr)
    with contextlib.suppress(OSError), (WIRING.parent / "standin-errors").open("a") as f:
        f.write(f"{Path(sys.argv[1]).name} {' '.join(sys.argv[2:3])}: {message}\n")
    return code


# -- snap ------------------------------------------------------------------------------------
def snap(argv: list[str]) -> int:
    verb, rest = (argv[0], argv[1:]) if argv else ("", [])
    names = [a for a in rest if not a.startswith("-")]
    if verb == "list":
        if not installed() or (names and names != ["microk8s"]):
            return fail("error: no matching snaps installed")
        book = json.loads(BOOK.read_text())
        print("Name      Version  Rev   Tracking       Publisher   Notes")
        print(f"microk8s  v1.32.3  {book['revision']}  {book['channel']}  canonical✓  classic")
        return 0
    if verb == "install" and names == ["microk8s"]:
        if installed():
            print('snap "microk8s" is already installed, see \'snap help refresh\'')
            return 0
        channel = next((a.split("=", 1)[1] for a in rest if a.startswith("--channel=")), "latest/stable")
        if "--classic" not in rest:
            return fail('error: This revision of snap "microk8s" was published using classic confinement and thus may perform\n'
                        "       arbitrary system changes outside of the security sandbox that snaps are usually confined to.")
        install(channel)
        print(f"microk8s ({channel}) v1.32.3 from Canonical✓ installed")
        return 0
    if verb == "remove" and names == ["microk8s"]:
        if installed():
            uninstall()
        print("microk8s removed")
        return 0
    if verb == "restart":
        if not installed():
            return fail(f'error: snap "{names[0].split(".")[0] if names else ""}" not found')
        if any(n in ("microk8s", "microk8s.daemon-kubelite") for n in names):
            kubelet_posts()
        return 0
    return fail(f"the lab's snap stand-in does not do `snap {' '.join(argv)}`", 2)


def install(channel: str) -> None:
    from tests.support import microk8s_fake
    from tools.lab.pki import sign

    for folder in ("args/cni-network", "certs", "credentials", "var/lock"):
        (SNAP_DATA / folder).mkdir(parents=True, exist_ok=True)
    (SNAP_DATA / "args" / "kubelet").write_text(KUBELET_ARGS)
    (SNAP_DATA / "args" / "kube-apiserver").write_text(APISERVER_DEFAULT_ARGS)
    (SNAP_DATA / "certs" / "csr.conf.template").write_text(CSR_TEMPLATE)
    (SNAP_DATA / "args" / "cni-network" / "cni.yaml").write_text(CNI_MANIFEST)
    (SNAP_DATA / "args" / "containerd-template.toml").write_text(CONTAINERD_TEMPLATE)
    os.environ.setdefault("ETC_LAUNCH_CONFIG", "/etc/microk8s.yaml")
    os.environ.setdefault("ROOT_LAUNCH_CONFIG", "/root/snap/microk8s/common/.microk8s.yaml")
    microk8s_fake.launch(SNAP_DATA, SNAP_COMMON)  # the install hook, then cluster-agent applying it
    BOOK.write_text(json.dumps({"channel": channel, "revision": REVISION}))
    wired = wiring()
    if "ca_dir" not in wired:
        return  # a node of its own until it joins: the lab runs no API server here
    ca_dir = Path(wired["ca_dir"])
    for file in ("ca.crt", "ca.key"):  # the cluster's CA, as the seed keeps it (cluster-agent signs with it)
        (SNAP_DATA / "certs" / file).write_bytes((ca_dir / file).read_bytes())
    server_cert()
    ca = (ca_dir / "ca.crt").read_bytes()
    cert, key = sign(ca_dir, "admin", ("system:masters",))
    (SNAP_DATA / "credentials" / "client.config").write_text(kubeconfig_text(ca, "admin", cert, key))
    cert, key = sign(ca_dir, f"system:node:{hostname()}", ("system:nodes",))
    (SNAP_DATA / "credentials" / "kubelet.config").write_text(kubeconfig_text(ca, "kubelet", cert, key))
    kubelet_posts()


def server_cert() -> None:
    """`refresh_csr_conf; gen_server_cert`: server.crt for the alt_names of csr.conf.template."""
    from tests.support import microk8s_fake
    from tools.lab.pki import sign

    names = [value for _, value in microk8s_fake.alt_names((SNAP_DATA / "certs" / "csr.conf.template").read_text())]
    ca_dir = Path(wiring()["ca_dir"])
    cert, key = sign(ca_dir, "127.0.0.1", (), tuple(names))
    (SNAP_DATA / "certs" / "server.crt").write_bytes(cert)
    (SNAP_DATA / "certs" / "server.key").write_bytes(key)
    # Served as kubelite serves it once (re)started: the lab's API server reloads ca_dir/server.*
    for name, pem in (("server.key", key), ("server.crt", cert)):
        (ca_dir / f".{name}").write_bytes(pem)
        os.replace(ca_dir / f".{name}", ca_dir / name)


def uninstall() -> None:
    # On the control plane the cluster's datastore goes with the snap; the lab's API server
    # outlives it, so what this MicroK8s put there goes: every Node of its cluster (the lab's API
    # server serves this cluster alone) and its CNI.
    if "ca_dir" in wiring() and (SNAP_DATA / "credentials" / "client.config").exists():
        kubectl(["delete", "nodes", "--all", "--wait=false"], check=False)
        kubectl(["delete", "-f", str(SNAP_DATA / "args" / "cni-network" / "cni.yaml"), "--ignore-not-found", "--wait=false"], check=False)
    shutil.rmtree(SNAP, ignore_errors=True)
    BOOK.unlink(missing_ok=True)


# -- microk8s ---------------------------------------------------------------------------------
def microk8s(argv: list[str]) -> int:
    if not installed():
        return fail("microk8s: command not found", 127)
    verb, rest = (argv[0], argv[1:]) if argv else ("", [])
    clustered = (SNAP_DATA / "var" / "lock" / "clustered.lock").exists()
    if verb == "status":
        if "--addon" in rest:
            print("enabled" if (SNAP / "enabled-addons" / rest[-1]).exists() else "disabled")
        elif clustered:  # microk8s-status.wrapper @ v1.32
            print("This MicroK8s deployment is acting as a node in a cluster. Please use the microk8s.status on the master.")
        else:
            print("microk8s is running\nhigh-availability: no")
        return 0
    if verb == "enable":
        (SNAP / "enabled-addons").mkdir(exist_ok=True)
        (SNAP / "enabled-addons" / rest[0]).write_text(" ".join(rest[1:]))
        return 0
    if verb == "kubectl":
        if not (SNAP_DATA / "credentials" / "client.config").exists():
            return fail("The connection to the server 127.0.0.1:16443 was refused - did you specify the right host or port?")
        return subprocess.run([wiring()["kubectl"], "--kubeconfig", str(SNAP_DATA / "credentials" / "client.config"), *rest],
                              check=False, timeout=600).returncode
    if verb == "config":
        print((SNAP_DATA / "credentials" / "client.config").read_text().replace("127.0.0.1", default_address()))
        return 0
    if verb == "refresh-certs":
        if rest != ["--cert", "server.crt"]:
            return fail(f"the lab's stand-in refreshes only server.crt, not {rest}", 2)
        server_cert()
        return 0
    if verb == "add-node":
        return add_node(rest)
    if verb == "join":
        return join(rest)
    if verb == "leave":
        locks = SNAP_DATA / "var" / "lock"
        if not (locks / "no-cert-reissue").exists():  # microk8s-leave.wrapper @ v1.32
            return fail("This MicroK8s deployment is not acting as a node in a cluster.")
        if not (locks / "clustered.lock").exists():  # leave.py: a dqlite node resets its datastore
            return fail("the lab's stand-in does not leave as a control plane: leave.py would stop its API server and wipe its datastore", 2)
        for lock in ("clustered.lock", "no-k8s-dqlite", "no-cert-reissue"):
            (SNAP_DATA / "var" / "lock" / lock).unlink(missing_ok=True)
        (SNAP_DATA / "credentials" / "kubelet.config").unlink(missing_ok=True)
        set_arg("kubelet", "--node-labels", '"microk8s.io/cluster=true,node.kubernetes.io/microk8s-controlplane=microk8s-controlplane"')
        return 0
    if verb == "remove-node":  # remove_node.py @ v1.32 (remove_dqlite_node, then remove_node)
        name = rest[0]
        node = kubectl(["get", "node", name, "-o", "json"], check=False)
        addresses = (json.loads(node.stdout).get("status", {}).get("addresses") or []) if node.returncode == 0 else None
        if addresses is None or not any(a.get("type") == "InternalIP" for a in addresses):  # refused before any deletion
            print(f"Node {name} does not exist in Kubernetes." if addresses is None else f"Node {name} is not part of the cluster.")
            return 1
        kubectl(["delete", "node", name])
        return 0
    return fail(f"the lab's microk8s stand-in does not do `microk8s {' '.join(argv)}`", 2)


def add_node(rest: list[str]) -> int:
    """add_token.py @ v1.32: --token, else token_hex(16); --token-ttl appends `token|expiry`."""
    import secrets

    opts = dict(zip(rest[::2], rest[1::2], strict=False))
    token = opts.get("--token") or opts.get("-t") or secrets.token_hex(16)
    ttl = int(opts.get("--token-ttl") or opts.get("-l") or -1)
    line = token if ttl == -1 else f"{token}|{int(time.time()) + ttl}"
    tokens = SNAP_DATA / "credentials" / "cluster-tokens.txt"
    with tokens.open("a") as f:
        f.write(line + "\n")
    tokens.chmod(0o600)
    with (SNAP_DATA / "lab-issued-tokens").open("a") as f:  # the lab's record (its state canary), not MicroK8s'
        f.write(token + "\n")
    if opts.get("--format") == "token":
        print(token)
    else:
        print(f"microk8s join {default_address()}:25000/{token}")
    return 0


def join(rest: list[str]) -> int:
    """join.py @ v1.32 (join_dqlite_worker_node): the seed's cluster-agent checks the token; the
    seed's kubelet args replace this node's (then its node IP and hostname override as join.py
    sets them); the kubelet's certificate is signed there, its labels set, and the kubelet starts."""
    import urllib.error

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from tests.support.microk8s_client_cert import signed

    if not rest or "/" not in rest[0] or ":" not in rest[0]:
        return fail("Usage: microk8s join <master>:<port>/<token> [--worker]", 2)
    if "--worker" not in rest:
        return fail("the lab's stand-in joins workers only (one control plane runs the API server)", 2)
    address, token = rest[0].split("/")[0], rest[0].split("/")[1]
    try:
        answer = agent_post(address, "/cluster/api/v2.0/join", {"token": token, "hostname": hostname(), "port": "25000", "worker": True})
        if answer["ca_key"] is not None:  # answered as to a control plane
            return fail("Joining process failed. Make sure the cluster you connect to supports joining worker nodes.")
        args = answer["kubelet_args"]  # store_base_kubelet_args, update_kubelet_node_ip, update_kubelet_hostname_override
        (SNAP_DATA / "args" / "kubelet").write_text(args)
        if "--node-ip" in args:
            set_arg("kubelet", "--node-ip", answer["hostname_override"])  # the address the agent saw it come from
        if "--hostname-override" in args:
            set_arg("kubelet", "--hostname-override", None)
        # update_cert_auth_kubeproxy, then update_cert_auth_kubelet: each identity's CSR, signed with the join's request tokens.
        proxy = signed(agent_post, address, f"{token}-proxy", x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "system:kube-proxy")]))
        kubelet = signed(agent_post, address, f"{token}-kubelet", x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                                                                          x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{hostname()}")]))
    except urllib.error.HTTPError as err:
        return fail(f"Connection failed. {err.read().decode(errors='replace').strip()} ({err.code}).")
    except OSError as err:
        return fail(f"Connection failed. {err}")
    ca = answer["ca"].encode()
    (SNAP_DATA / "certs" / "ca.remote.crt").write_bytes(ca)
    server = f"https://{address.split(':')[0]}:{answer['apiport']}"
    for config, user, (pem, cert) in (("kubelet.config", "kubelet", kubelet), ("proxy.config", "system:kube-proxy", proxy)):
        (SNAP_DATA / "credentials" / config).write_text(kubeconfig_text(ca, user, cert, pem).replace("https://127.0.0.1:16443", server))
    set_arg("kubelet", "--client-ca-file", "${SNAP_DATA}/certs/ca.remote.crt")
    set_arg("kubelet", "--node-labels", f'"{WORKER_LABELS}"')
    for lock in ("clustered.lock", "no-k8s-dqlite", "no-cert-reissue"):
        (SNAP_DATA / "var" / "lock" / lock).touch()
    kubelet_posts()
    return 0


if __name__ == "__main__":
    command = Path(sys.argv[1]).name
    sys.exit(snap(sys.argv[2:]) if command == "snap" else microk8s(sys.argv[2:]))
