"""The kit every layer shares: script composition (`shell`: a host script plus its parameters
into one remote command; `scripts/lib.sh`, the shell library prepended to every script, and `scripts/nft.sh`, the
nftables helpers of the scripts that keep a table of their own), the
Output helper `after` (`outputs`), Kubernetes quantities (`quantity`), and the Kubernetes
(`kube`) and Helm (`helm`) helpers. Imports no layer."""
