"""The program's building blocks, one package per layer, each a set of Pulumi ComponentResources
with the host scripts it runs beside it (`<layer>/scripts/`):

kit < hosts < vpn < cluster < workloads. A layer imports only the kit and the layers below it;
nothing here imports the stack wiring (`stacks/`) or the tools (`tools/`). tests/test_layers.py
checks it."""
