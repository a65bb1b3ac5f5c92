"""Kubernetes resource quantities (`500m`, `16G`, `16Gi`, `1.5`, `2e3`), read as Kubernetes reads
them: the grammar of apimachinery's `resource.ParseQuantity` (pkg/api/resource/quantity.go).

    <quantity>     ::= <signedNumber><suffix>
    <number>       ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    <suffix>       ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>     ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>    ::= n | u | m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>

The value goes into manifests as written (the API server canonicalises it); this only reads
its size, for the checks that compare requests with what nodes have.
"""

from __future__ import annotations

import re
from decimal import Decimal

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal("1e3"),
            "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"), "P": Decimal("1e15"), "E": Decimal("1e18")}
_QUANTITY = re.compile(r"(?P<sign>[+-]?)(?P<number>[0-9]+\.?[0-9]*|\.[0-9]+)"
                       r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE]?)")


def parse_quantity(text: str) -> Decimal:
    """The quantity's value in base units (bytes, cores); ValueError if Kubernetes would refuse it."""
    found = _QUANTITY.fullmatch(text)
    if found is None:
        raise ValueError(text)
    value = Decimal(found["sign"] + found["number"])
    suffix = found["suffix"]
    if suffix in _BINARY:
        return value * _BINARY[suffix]
    if suffix[:1] in ("e", "E"):
        return value.scaleb(int(suffix[1:]))
    return value * _DECIMAL[suffix]


MEBIBYTE = 2**20
