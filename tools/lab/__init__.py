"""The end-to-end lab: hosts as network namespaces on this machine (`netlab`), the plan's
remote commands run over real SSH in dependency order (`engine`), the reference deployment
(`reference`); `python -m tools.lab up|down` (`make lab-up`, `make lab-down`)."""
