"""What runs on the cluster: model services (`model_service`), TF-Serving (`tf_serving`, with
`containers/fetch-model.sh`), GPU sharing (`gpu_sharing`), ingress with TLS (`ingress`), the
workload namespace (`namespace`), the registry pull secret (`registry`) and CoreDNS kept at the
cloud sites (`cluster_dns`). May use: the kit, hosts, vpn, cluster."""
