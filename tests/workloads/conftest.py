"""Fixtures of the workload tests: the dev plan, and the dev plan with a TF model fetched from
an HTTPS source."""

from __future__ import annotations

import pytest

from tests.support.helpers import evaluate_config, stack_config
from tests.support.workloads import with_model_source
from tools.render.evaluate import Evaluation


@pytest.fixture(scope="module")
def dev() -> Evaluation:
    return evaluate_config(stack_config("dev"))


@pytest.fixture(scope="module")
def fetching() -> Evaluation:
    return evaluate_config(with_model_source(stack_config("dev")))
