"""TensorFlow Serving for the catalog's TF models, on GPU nodes.

`models.config` is generated from the catalog and mounted as a ConfigMap *directory* (a
subPath mount never sees updates); TF-Serving re-reads it every poll interval, so adding or
removing a model needs no restart. Every model has a pinned version, so none is unloaded
or swapped by accident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
from google.protobuf import text_encoding
from pulumi_kubernetes.core.v1 import ConfigMap, PersistentVolumeClaim

from components.kube import manifest, metadata
from components.model_service import ModelService, ModelServiceArgs

GRPC_PORT = 8500
REST_PORT = 8501
CONFIG_DIR = "/etc/tf-serving"


@dataclass(frozen=True)
class TfModel:
    name: str
    base_path: str
    version: int


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
    storage_class: str | None = None
    """Storage class of the models volume; the cluster default when None."""
    tolerations: Sequence[Mapping[str, str]] = ()
    """GPU node taints to tolerate."""
    pull_secret: pulumi.Input[str] | None = None
    """Image pull secret name."""


class TfServing(pulumi.ComponentResource):
    """One TF-Serving server for every TF model of the catalog."""

    service_name: pulumi.Output[str]
    """Its Service (gRPC on 8500, REST on 8501)."""

    def __init__(self, name: str, args: TfServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:k8s:TfServing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = ConfigMap(f"{name}-models", metadata=metadata(f"{name}-models", args.namespace, "model-server"),
                           data={"models.config": models_config(args.models)}, opts=child)
        claim = PersistentVolumeClaim(f"{name}-store", metadata=metadata(f"{name}-store", args.namespace, "model-server"), spec=manifest({
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": args.storage_size}},
            **({"storageClassName": args.storage_class} if args.storage_class else {}),
        }), opts=child)
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
            ),
            volumes=(
                ({"name": "models-config", "configMap": {"name": config.metadata.apply(lambda m: m["name"])}},
                 {"name": "models-config", "mountPath": CONFIG_DIR, "readOnly": True}),
                ({"name": "models", "persistentVolumeClaim": {"claimName": claim.metadata.apply(lambda m: m["name"]), "readOnly": True}},
                 {"name": "models", "mountPath": "/models", "readOnly": True}),
            ),
            tolerations=args.tolerations,
            pull_secret=args.pull_secret,
            component="model-server",
        ), opts=child)
        self.service_name = server.service_name
        self.register_outputs({"serviceName": self.service_name})
