"""The cluster: MicroK8s installed, joined and pinned to the VPN (`microk8s`), the GPU driver
and container toolkit (`nvidia`), and the cluster-wide verification (`verify`, with the staging
roots in `certs/`). Scripts: microk8s-*, nvidia-setup, gpu-check, verify-cluster. May use: the
kit, hosts, vpn."""
