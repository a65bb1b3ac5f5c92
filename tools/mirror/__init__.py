"""Airgapped sites: what a stack's hosts fetch, and from where (`make mirror`, docs/airgap.md)."""
