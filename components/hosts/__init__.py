"""Hosts: the host interface and existing hosts (`host`), OpenStack VMs (`openstack`,
`cloud_init`), SSH connections with pinned host keys (`ssh`), the base bootstrap
(`bootstrap`, which runs an extra step it is given, e.g. the GPU driver), the host firewall
of hosts with a public address (`firewall`) and the mirror step of airgapped sites
(`mirrors`). Scripts: base-bootstrap, base-teardown, host-probe, firewall-*, mirrors*. May
use: the kit."""
