"""`hybrid-ai:ingress`: public entry and TLS."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stacks.config.types import (
    ConfigKeyName,
    Email,
    HostAddress,
    Schema,
)


class Ingress(Schema):
    domain: HostAddress | None = Field(default=None, description="Public host name of the API, e.g. `api.example.com`.")
    acme_email: Email | None = Field(default=None, description="E-mail for Let's Encrypt.")
    tls: Literal["letsencrypt", "letsencrypt-staging", "byo", "none"] = Field(
        default="none", description="TLS mode: Let's Encrypt (production or staging; needs `domain` and `acmeEmail`), bring-your-own secret, or none."
    )
    tls_cert_config: ConfigKeyName | None = Field(
        default=None, description="With `tls: byo`: secret config key holding the PEM certificate and key."
    )

    @model_validator(mode="after")
    def _tls_inputs(self) -> Ingress:
        if self.tls.startswith("letsencrypt") and (self.domain is None or self.acme_email is None):
            raise ValueError(f"tls '{self.tls}' needs `domain` and `acmeEmail`; set both or use `tls: none`")
        if self.tls == "byo" and self.tls_cert_config is None:
            raise ValueError("tls 'byo' needs `tlsCertConfig`, the secret config key holding the certificate")
        return self
