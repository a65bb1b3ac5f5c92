"""Fixtures of the end-to-end mesh tests: a lab of the reference hosts per test module, and
the program's mesh applied to it once."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from tests.support.helpers import unavailable
from tools.lab.base import missing_requirements
from tools.lab.engine import Engine
from tools.lab.netlab import Lab
from tools.lab.reference import HOSTS, SITES, in_mesh_layers, lab_config


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    why = missing_requirements()
    if why:
        unavailable(f"end-to-end lab: {why}")
    with Lab(tmp_path_factory.mktemp("lab"), copy.deepcopy(SITES), copy.deepcopy(HOSTS)) as running:
        yield running


@pytest.fixture(scope="module")
def engine(lab: Lab) -> Engine:
    eng = Engine(lab, {"sshPrivateKey": lab.client_key.read_text()}, scope=in_mesh_layers)
    eng.up(lab_config(lab))
    return eng
