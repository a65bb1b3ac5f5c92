"""TensorFlow Serving for the catalog's TF models, on GPU nodes.

`models.config` is generated from the catalog and mounted as a ConfigMap *directory* (a
subPath mount never sees updates); TF-Serving re-reads it every poll interval, so adding or
removing a model needs no restart. Every model has a pinned version, so none is unloaded
or swapped by accident.

Local models live on a volume of MicroK8s' hostpath-storage class (node-local, so the server
stays on the GPU node where the volume was first bound). A model with a `source` gets an init
container that downloads its archive, checks its SHA-256 and unpacks it at
`<base_path>/<version>` before the server starts (adding one restarts the server). Object-store
base paths are refused in the config: TF-Serving 2.18 has no S3 file system, and the program
passes it no Google credentials for `gs://`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import text_encoding
from pulumi_kubernetes.core.v1 import ConfigMap, PersistentVolumeClaim, Secret
from pulumi_kubernetes.networking.v1 import NetworkPolicy

from components.kit.kube import manifest, metadata, selector
from components.workloads.model_service import ModelService, ModelServiceArgs

GRPC_PORT = 8500
REST_PORT = 8501
CONFIG_DIR = "/etc/tf-serving"
MODELS_DIR = "/models"
# The StorageClass `microk8s enable hostpath-storage` creates (microk8s-core-addons 1.32,
# addons/hostpath-storage/storage.yaml); MicroK8s has no default class without the addon.
HOSTPATH_STORAGE_CLASS = "microk8s-hostpath"
FETCH_IMAGE = "curlimages/curl:8.11.1"  # alpine 3.21: curl, busybox tar and sha256sum
FETCH_SCRIPT = Path(__file__).parent / "containers" / "fetch-model.sh"
FETCH_CA_DIR = "/fetch-ca"  # the files mirror's private CA, when it has one
# MonitoringConfig (tensorflow_serving/config/monitoring_config.proto at 2.18.0): Prometheus
# text on the REST port at this path, whether or not anything scrapes it.
METRICS_PATH = "/monitoring/prometheus/metrics"
MONITORING_CONFIG = f'prometheus_config {{\n  enable: true\n  path: "{METRICS_PATH}"\n}}\n'


@dataclass(frozen=True)
class TfModel:
    name: str
    base_path: str
    version: int
    source: str | None = None
    """HTTPS URL of the version's SavedModel as .tar.gz, fetched into the volume."""
    sha256: str | None = None
    """SHA-256 of that archive."""


def _quoted(text: str) -> str:
    """A protobuf text-format string literal: quotes, backslashes, control and non-ASCII bytes
    escaped the way protobuf's own printer does, so no value can end the string or the entry."""
    escaped: str = text_encoding.CEscape(text.encode(), as_utf8=False)
    return f'"{escaped}"'


def models_config(models: Sequence[TfModel]) -> str:
    """TF-Serving's ModelServerConfig in text format, sorted for stable diffs."""
    entries = "".join(
        "  config {\n"
        f"    name: {_quoted(m.name)}\n"
        f"    base_path: {_quoted(m.base_path)}\n"
        '    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ specific {{ versions: {m.version} }} }}\n"
        "  }\n"
        for m in sorted(models, key=lambda m: m.name)
    )
    return "model_config_list {\n" + entries + "}\n"


@dataclass
class TfServingArgs:
    namespace: pulumi.Input[str]
    """Namespace."""
    image: str
    """TF-Serving image (GPU build), pinned."""
    models: Sequence[TfModel]
    """The catalog's TF models."""
    gpus: int = 1
    """nvidia.com/gpu for the server."""
    memory: str = "8Gi"
    """Memory request and limit."""
    poll_seconds: int = 30
    """How often the server re-reads models.config."""
    storage_size: str = "50Gi"
    """Size of the models volume (for local base paths)."""
    storage_class: str = HOSTPATH_STORAGE_CLASS
    """Storage class of the models volume."""
    tolerations: Sequence[Mapping[str, str]] = ()
    """GPU node taints to tolerate."""
    pull_secret: pulumi.Input[str] | None = None
    """Image pull secret name."""
    blocked_cidrs: Sequence[str] = ()
    """What the model downloads may not reach (the cluster's networks, the cloud metadata service)."""
    memory_fraction: float | None = None
    """--per_process_gpu_memory_fraction: the server's share of one GPU's memory (its budget)."""
    gpu_node_terms: Sequence[Mapping[str, Any]] = ()
    """Node affinity expressions keeping it on GPUs that fit its budget."""
    fetch_image: str = FETCH_IMAGE
    """The model fetcher's image (by digest on mirrored sites)."""
    source_ca: pulumi.Input[str] | None = None
    """The private CA (PEM, a secret) of the files mirror the sources are on; the fetcher trusts only it."""
    source_aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """The files mirror's host name -> its addresses, as the GPU hosts resolve it (the pod's `hostAliases`)."""


def fetch_container(model: TfModel, image: str = FETCH_IMAGE, ca: bool = False) -> dict[str, Any]:
    """The init container that puts `model`'s version on the volume (see fetch-model.sh); with `ca`,
    it trusts the files mirror's CA from the `fetch-ca` volume."""
    return {
        "name": f"fetch-{model.name}"[:63],
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "/fetch/fetch-model.sh"],
        "env": [{"name": "SOURCE", "value": model.source}, {"name": "SHA256", "value": model.sha256},
                {"name": "TARGET", "value": f"{model.base_path}/{model.version}"},
                *([{"name": "CACERT", "value": f"{FETCH_CA_DIR}/ca.crt"}] if ca else [])],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
        "volumeMounts": [{"name": "models", "mountPath": MODELS_DIR}, {"name": "fetch-script", "mountPath": "/fetch", "readOnly": True},
                         *([{"name": "fetch-ca", "mountPath": FETCH_CA_DIR, "readOnly": True}] if ca else [])],
    }


class TfServing(pulumi.ComponentResource):
    """One TF-Serving server for every TF model of the catalog."""

    service_name: pulumi.Output[str]
    """Its Service (gRPC on 8500, REST on 8501)."""

    def __init__(self, name: str, args: TfServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:k8s:TfServing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = ConfigMap(f"{name}-models", metadata=metadata(f"{name}-models", args.namespace, "model-server"),
                           data={"models.config": models_config(args.models), "monitoring.config": MONITORING_CONFIG}, opts=child)
        claim = PersistentVolumeClaim(f"{name}-store", metadata=metadata(f"{name}-store", args.namespace, "model-server"), spec=manifest({
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": args.storage_size}},
            "storageClassName": args.storage_class,
        }), opts=child)
        fetched = sorted((m for m in args.models if m.source), key=lambda m: m.name)
        init_volumes: list[dict[str, Any]] = []
        if fetched:
            script = ConfigMap(f"{name}-fetch", metadata=metadata(f"{name}-fetch", args.namespace, "model-server"),
                               data={"fetch-model.sh": FETCH_SCRIPT.read_text()}, opts=child)
            init_volumes.append({"name": "fetch-script", "configMap": {"name": script.metadata.apply(lambda m: m["name"])}})
            if args.source_ca is not None:
                ca = Secret(f"{name}-fetch-ca", metadata=metadata(f"{name}-fetch-ca", args.namespace, "model-server"), type="Opaque",
                            string_data={"ca.crt": pulumi.Output.secret(args.source_ca)}, opts=child)
                init_volumes.append({"name": "fetch-ca", "secret": {"secretName": ca.metadata.apply(lambda m: m["name"])}})
            self._download_egress(name, args, child)
        server = ModelService(name, ModelServiceArgs(
            namespace=args.namespace,
            image=args.image,
            port=REST_PORT,
            extra_ports=(GRPC_PORT,),
            cpu="1", cpu_limit="4", memory=args.memory,
            gpus=args.gpus,
            placement="gpu",
            probe=("tcp", ""),
            run_as=10001,
            args=(
                f"--port={GRPC_PORT}", f"--rest_api_port={REST_PORT}",
                f"--model_config_file={CONFIG_DIR}/models.config",
                f"--model_config_file_poll_wait_seconds={args.poll_seconds}",
                f"--monitoring_config_file={CONFIG_DIR}/monitoring.config",
                # Unset, TensorFlow takes most of the GPU's free memory at the first load.
                *([f"--per_process_gpu_memory_fraction={args.memory_fraction:.2f}"] if args.memory_fraction is not None else []),
            ),
            volumes=(
                ({"name": "models-config", "configMap": {"name": config.metadata.apply(lambda m: m["name"])}},
                 {"name": "models-config", "mountPath": CONFIG_DIR, "readOnly": True}),
                # Writable for the fetch init containers; the server itself mounts it read-only.
                ({"name": "models", "persistentVolumeClaim": {"claimName": claim.metadata.apply(lambda m: m["name"])}},
                 {"name": "models", "mountPath": MODELS_DIR, "readOnly": True}),
            ),
            tolerations=args.tolerations,
            pull_secret=args.pull_secret,
            component="model-server",
            init_containers=[fetch_container(m, args.fetch_image, args.source_ca is not None) for m in fetched],
            init_volumes=init_volumes,
            host_aliases=args.source_aliases if fetched else {},
            gpu_node_terms=args.gpu_node_terms,
        ), opts=child)
        self.service_name = server.service_name
        self.register_outputs({"serviceName": self.service_name})

    @staticmethod
    def _download_egress(name: str, args: TfServingArgs, opts: pulumi.ResourceOptions) -> None:
        """HTTPS out of the cluster for the model downloads (the namespace denies egress)."""
        NetworkPolicy(f"{name}-download", metadata=metadata(f"{name}-download", args.namespace, "network-policy"), spec=manifest({
            "podSelector": {"matchLabels": selector(name)},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(args.blocked_cidrs)}}],
                        "ports": [{"protocol": "TCP", "port": 443}]}],
        }), opts=opts)
