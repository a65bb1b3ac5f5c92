//go:build tools

// Package tools pins the upstream command this module builds: prometheus-adapter at the
// version chart 5.3.0 ships (v0.12.0), run by the tests on the rules config the program writes
// (no upstream source is copied).
package tools

import _ "sigs.k8s.io/prometheus-adapter/cmd/adapter"
