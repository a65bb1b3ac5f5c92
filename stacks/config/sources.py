"""`hybrid-ai:sources`: where the pinned Helm charts and the Gateway API CRD bundle are fetched
from. By default each chart comes from its own upstream repository (`charts/<name>/chart.yaml`)
and the bundle from the Gateway API release; a site without internet access (or one that
mirrors what it runs) points both at its own copies. Names and versions stay the pinned ones."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator

from stacks.config.types import Schema

# A chart repository (Helm's index.yaml under it) or an OCI registry path, no query or credentials.
CHART_SOURCE = r"^(https?|oci)://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*/?$"
BUNDLE_URL = r"^https?://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)+$"
BUNDLE_PATH = r"^[A-Za-z0-9._/~-]+\.ya?ml$"


class Sources(Schema):
    charts: str | None = Field(
        default=None,
        description="Fetch every pinned chart from this Helm repository (`https://...`, serving `index.yaml`) or OCI registry "
                    "(`oci://registry/path`, holding `<path>/<chart>`) instead of each chart's own repository.",
    )
    gateway_api_crds: str | None = Field(
        default=None,
        description="The Gateway API CRD bundle (standard channel, the pinned version): an `http(s)://` URL or a local `.yaml` "
                    "file; default: the Gateway API release's own `standard-install.yaml`.",
    )

    @field_validator("charts")
    @classmethod
    def _repository_or_registry(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(CHART_SOURCE, value):
            raise ValueError("not a Helm repository URL or an OCI registry path; "
                             "use e.g. `https://charts.example.com/stable` or `oci://registry.example.com/charts`")
        return value

    @field_validator("gateway_api_crds")
    @classmethod
    def _url_or_file(cls, value: str | None) -> str | None:
        if value is None or re.fullmatch(BUNDLE_URL, value):
            return value
        if not re.fullmatch(BUNDLE_PATH, value):
            raise ValueError("not an http(s):// URL or a path to a .yaml file; give the bundle's URL or file")
        if not Path(value).expanduser().is_file():
            raise ValueError("no such file; give the path of the Gateway API bundle (relative to the project) or its URL")
        return value
