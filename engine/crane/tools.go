//go:build tools

// Package tools pins the upstream command this module builds: crane, which `make mirror`
// uses to resolve image digests and copy images into an OCI layout (docs/airgap.md).
package tools

import _ "github.com/google/go-containerregistry/cmd/crane"
