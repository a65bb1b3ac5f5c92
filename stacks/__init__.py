"""What a stack is: the schema of `Pulumi.<stack>.yaml` (`config/`, with the cross-section
checks in `config/consistency/`), loading it (`load`), and how one stack's config becomes one
graph (`program`, the wiring in `build`, `workloads` and `monitoring`, chart pins in
`charts`). May use: components. Never imports tools/ or tests/."""
