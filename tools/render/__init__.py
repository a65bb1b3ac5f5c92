"""Offline render: evaluate a stack under Pulumi's mock runtime and write the plan for review."""
