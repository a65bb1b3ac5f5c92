"""Settings that would be ignored or overridden, and secret keys used for two things: said
rather than silently dropped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stacks.config.mirrors import mirror_secrets

if TYPE_CHECKING:
    from stacks.config.stack import StackConfig


def unused_settings(cfg: StackConfig) -> list[str]:
    """Settings that would be ignored or overridden: say so rather than drop them silently."""
    errors = []
    for i, h in enumerate(cfg.hosts):
        key = f"hosts[{i}]"
        if h.openstack is not None and h.ssh.host_key is not None:
            errors.append(f"{key}.ssh.hostKey: OpenStack VMs get a host key the program generates, which overrides this one; remove it")
        if h.existing is not None and h.ssh.public_key is not None:
            errors.append(f"{key}.ssh.publicKey: only used to create OpenStack VMs (their key pair); remove it from this existing host")
        if h.gpu is None and "nvidia" in h.model_fields_set:
            errors.append(f"{key}.nvidia: only used on hosts with `gpu`; remove it or describe the host's GPUs")
        if not h.in_cluster:
            for field, value in (("gpu", h.gpu), ("labels", h.labels), ("taints", h.taints)):
                if value:
                    errors.append(f"{key}.{field}: '{h.name}' is no cluster node (no `control-plane` or `worker` role), so this is ignored; add role `worker` or remove it")
        elif h.gpu is not None and h.gpu.profile is not None and not cfg.time_slicing.profiles:
            errors.append(f"{key}.gpu.profile: there are no timeSlicing.profiles, so it is ignored; define '{h.gpu.profile}' there or remove it")
    if cfg.vpn.operator_address is not None and cfg.vpn.operator_public_key is None:
        errors.append("vpn.operatorAddress: only used with vpn.operatorPublicKey; set the key or remove the address")
    if cfg.ingress.acme_email is not None and not cfg.ingress.tls.startswith("letsencrypt"):
        errors.append(f"ingress.acmeEmail: only used with `tls: letsencrypt` or `letsencrypt-staging`, not '{cfg.ingress.tls}'; remove it or change `tls`")
    if cfg.ingress.tls_cert_config is not None and cfg.ingress.tls != "byo":
        errors.append(f"ingress.tlsCertConfig: only used with `tls: byo`, not '{cfg.ingress.tls}'; remove it or set `tls: byo`")
    if cfg.cluster.upgrade.from_channel == cfg.cluster.channel:
        errors.append(f"cluster.upgrade.fromChannel: '{cfg.cluster.channel}' is cluster.channel already, so there is nothing to roll; remove it")
    receiver = cfg.monitoring.alert_receiver
    if receiver is not None and not cfg.monitoring.enabled:
        errors.append("monitoring.alertReceiver: only used with `monitoring.enabled: true`; enable monitoring or remove it")
    if receiver is not None and receiver.email is not None and receiver.email.username is None and "password_config" in receiver.email.model_fields_set:
        errors.append("monitoring.alertReceiver.email.passwordConfig: only used with `username`; set the login or remove it")
    if cfg.openstack is not None and not any(h.openstack for h in cfg.hosts):
        errors.append("openstack: no host has `openstack`, so this section is unused; remove it or add an OpenStack host")
    return errors


def secret_keys(cfg: StackConfig) -> list[str]:
    sections = {f.alias or name for name, f in type(cfg).model_fields.items()}
    uses = [(f"hosts[{i}].ssh.privateKeyConfig", h.ssh.private_key_config, "ssh") for i, h in enumerate(cfg.hosts)]
    if cfg.ingress.tls_cert_config:
        uses.append(("ingress.tlsCertConfig", cfg.ingress.tls_cert_config, "tls"))
    if cfg.registry is not None:
        uses.append(("registry.passwordConfig", cfg.registry.password_config, "registry"))
    uses += [(f"models[{i}].secretEnv.{var}", key, "model") for i, m in enumerate(cfg.models) for var, key in m.secret_env.items()]
    if cfg.backup.enabled and cfg.backup.object_storage is not None:
        uses.append(("backup.objectStorage.credentialsConfig", cfg.backup.object_storage.credentials_config, "objectStorage"))
    receiver = cfg.monitoring.alert_receiver
    if cfg.monitoring.enabled and receiver is not None and (secret := receiver.secret_key()):
        uses.append((secret[1], secret[0], "alertReceiver"))
    uses += mirror_secrets(cfg.mirrors, [(f"sites[{i}]", s.mirrors) for i, s in enumerate(cfg.sites)])
    errors: list[str] = []
    kind_of: dict[str, str] = {}
    for key, name, kind in uses:
        if name in sections:
            errors.append(f"{key}: '{name}' is a config section, not a secret key; name a key of its own (e.g. '{kind}Secret')")
        elif kind_of.setdefault(name, kind) != kind:
            errors.append(f"{key}: '{name}' already holds the {kind_of[name]} secret; keep each secret in its own key")
    return errors
