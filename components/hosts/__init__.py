"""Hosts: the host interface and existing hosts (`host`), OpenStack VMs (`openstack`,
`cloud_init`), SSH connections with pinned host keys (`ssh`), and the base bootstrap
(`bootstrap`, which runs an extra step it is given, e.g. the GPU driver). Scripts:
base-bootstrap, base-teardown, host-probe. May use: the kit."""
