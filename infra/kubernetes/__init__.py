"""The kubernetes target (infra/kubernetes/stack.py): Deployment, Service, HPA, PDB, ServiceMonitor,
PrometheusRule and dashboards for Grafana's sidecar, on a cluster with the Prometheus Operator."""
