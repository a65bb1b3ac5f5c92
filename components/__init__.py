"""Reusable Pulumi components of hybrid-ai. They know nothing of stack config files."""
