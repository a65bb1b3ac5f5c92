//go:build tools

// Package tools pins the upstream command this module builds: the NVIDIA device plugin at the
// chart's version, run by the tests on the sharing configs the program writes (no GPU needed
// to parse a config; no upstream source is copied).
package tools

import _ "github.com/NVIDIA/k8s-device-plugin/cmd/nvidia-device-plugin"
