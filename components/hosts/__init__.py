"""Hosts: the host interface and existing hosts (`host`), OpenStack VMs (`openstack`,
`cloud_init`), SSH connections with pinned host keys (`ssh`), the base bootstrap
(`bootstrap`, which runs an extra step it is given, e.g. the GPU driver), and the host
firewall of hosts with a public address (`firewall`). Scripts: base-bootstrap,
base-teardown, host-probe, firewall-*. May use: the kit."""
