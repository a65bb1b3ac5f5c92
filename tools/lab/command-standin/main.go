// A STAND-IN for the pulumi-command provider (pulumi/pulumi-command v1.2.1), for the lab's tests
// only: it is never installed for users and no CLI finds it unless a test puts its folder on PATH.
// The real provider's Go module is not served by the module proxy and no registry ships its
// binary; this one serves the same resource type tokens, property names and behaviour for the
// parts the program uses (docs/upstream.md lists each fact and the test that encodes it).
//
// It is built on the libraries pulumi-command v1.2.1 is built on, at the versions its
// provider/go.mod requires (pulumi-go-provider v1.3.0, pulumi sdk/v3 v3.224.0, x/crypto v0.48.0),
// so that the schema inference, Check defaults, Diff, Read and dial retry schedule are theirs.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi-go-provider/middleware/schema"

	"hybrid-ai/tools/lab/command-standin/remote"
)

// The version the Python SDK pulumi-command==1.2.1 asks the engine for.
const version = "1.2.1"

func main() {
	provider := infer.Provider(infer.Options{
		Metadata: schema.Metadata{
			DisplayName: "Command (lab stand-in)",
			Description: "A test-only stand-in for pulumi-command v1.2.1's remote.Command; not for use outside the lab.",
		},
		// remote.Command only: the program uses no other resource or function of pulumi-command,
		// and the stand-in refuses any it does not serve rather than pretending to run it.
		Resources: []infer.InferredResource{infer.Resource(&remote.Command{})},
	})
	if err := provider.Run(context.Background(), "command", version); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s", err.Error())
		os.Exit(1)
	}
}
