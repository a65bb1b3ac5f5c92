"""Shared test helpers: stack configs and mock evaluation (`helpers`), recording stubs of host
commands (`stubs`, `cluster_stubs`, `microk8s_fake`), golden render digests (`golden`)."""
