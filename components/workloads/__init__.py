"""What runs on the cluster: model services (`model_service`, its arguments in `model_args`
and its pod in `pod`; vLLM servers laid over them by `vllm`), TF-Serving (`tf_serving`, with
`containers/fetch-model.sh`), GPU sharing (`gpu_sharing`), ingress with TLS (`ingress`),
monitoring (`monitoring`, its alert rules and Alertmanager receiver in `alerting`, the custom
metrics API and model scrape jobs in `metrics_adapter`), the workload namespace (`namespace`),
the registry pull secret (`registry`), CoreDNS kept at the cloud sites (`cluster_dns`) and the
placement of MicroK8s' own addon workloads (`addons`). May use: the kit, hosts, vpn, cluster."""
