"""The hybrid-ai policy pack (run by `pulumi preview --policy-pack policy`)."""

from pulumi_policy import EnforcementLevel, PolicyPack
from rules import POLICIES

PolicyPack(name="hybrid-ai", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
