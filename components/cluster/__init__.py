"""The cluster: MicroK8s installed, joined and pinned to the VPN (`microk8s`, over the nodes
of `node`, labelled and tainted by `node_meta`), cluster-agent and dqlite reachable from the
control planes only (`agent_guard`), the Kubernetes provider and node patches (`api`), the
admission policy that keeps the placement labels the
program's own and keeps Calico's accounts to what Calico writes on Nodes and pods (`label_guard`,
`calico_guard`), the one that lets only the stack's hosts register a Node
(`known_nodes`), its rolling channel upgrade (`upgrade`) and NVIDIA driver
upgrade (`driver_upgrade`), the GPU driver and container toolkit (`nvidia`), the cluster-wide
verification (`verify`, with the staging roots in `certs/`), and scheduled datastore snapshots
(`backup`). Scripts: microk8s-*, agent-guard-*, known-nodes-*, nvidia-setup, gpu-check, verify-cluster,
datastore-backup*, backup-receive*, datastore-restore. May use: the kit, hosts, vpn."""
