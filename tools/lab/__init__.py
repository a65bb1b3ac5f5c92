"""The end-to-end lab: hosts as network namespaces on this machine (`netlab`), the reference
deployment (`reference`), the Kubernetes control plane (`kube`) and the pulumi-command stand-in
(`command-standin/`). The program runs on it under the real Pulumi CLI (tests/support/mesh_lab.py:
`make lab-up`, `make lab-down`)."""
