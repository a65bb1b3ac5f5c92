"""What runs on the cluster: model services (`model_service`), TF-Serving (`tf_serving`, with
`containers/fetch-model.sh`), GPU sharing (`gpu_sharing`), ingress with TLS (`ingress`), the
workload namespace (`namespace`) and the registry pull secret (`registry`). May use: the kit,
hosts, vpn, cluster."""
