//go:build tools

// Package tools pins the upstream command this module builds.
package tools

import _ "github.com/pulumi/pulumi-kubernetes/provider/v4/cmd/pulumi-resource-kubernetes"
