"""The VPN across cloud and NAT'd sites: its interface (`vpn`), the WireGuard mesh
(`wireguard`), its topology (`wireguard_topology`) and the checks of what hosts print and of
the configs (`wireguard_check`), each host's WireGuard metrics timer (`mesh_metrics`), and
Netmaker (`netmaker`). Scripts: wg-*, netclient-*, netmaker-*. May use: the kit, hosts."""
