package remote

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

var (
	_ = (infer.CustomResource[CommandInputs, CommandOutputs])((*Command)(nil))
	_ = (infer.CustomUpdate[CommandInputs, CommandOutputs])((*Command)(nil))
	_ = (infer.CustomDelete[CommandOutputs])((*Command)(nil))
)

// Create runs `create` (nothing in preview; nothing at all when `create` is unset). The ID is a
// random hex suffix of the name, as upstream's.
func (*Command) Create(ctx context.Context, req infer.CreateRequest[CommandInputs]) (infer.CreateResponse[CommandOutputs], error) {
	state := CommandOutputs{CommandInputs: req.Inputs}
	id, err := resource.NewUniqueHex(req.Name, 8, 0)
	if err != nil || req.DryRun || req.Inputs.Create == nil {
		return infer.CreateResponse[CommandOutputs]{ID: id, Output: state}, err
	}
	err = state.run(ctx, *req.Inputs.Create, req.Inputs.Logging)
	return infer.CreateResponse[CommandOutputs]{ID: id, Output: state}, err
}

// Update runs `update`, or `create` when `update` is unset, in place, with the previous stdout
// and stderr as the starting outputs (and in PULUMI_COMMAND_STDOUT/STDERR).
func (*Command) Update(ctx context.Context, req infer.UpdateRequest[CommandInputs, CommandOutputs]) (infer.UpdateResponse[CommandOutputs], error) {
	news := req.Inputs
	state := CommandOutputs{CommandInputs: news, BaseOutputs: req.State.BaseOutputs}
	if req.DryRun {
		return infer.UpdateResponse[CommandOutputs]{Output: state}, nil
	}
	var err error
	if news.Update != nil {
		err = state.run(ctx, *news.Update, news.Logging)
	} else if news.Create != nil {
		err = state.run(ctx, *news.Create, news.Logging)
	}
	return infer.UpdateResponse[CommandOutputs]{Output: state}, err
}

// Delete runs `delete` from the state: the old inputs (connection included) and old outputs.
func (*Command) Delete(ctx context.Context, req infer.DeleteRequest[CommandOutputs]) (infer.DeleteResponse, error) {
	props := req.State
	if props.Delete == nil {
		return infer.DeleteResponse{}, nil
	}
	return infer.DeleteResponse{}, props.run(ctx, *props.Delete, props.Logging)
}

const (
	envStdout = "PULUMI_COMMAND_STDOUT"
	envStderr = "PULUMI_COMMAND_STDERR"
)

// run dials (with retries), opens one session and runs cmd in it. A failure after the dial
// (a dropped session, a non-zero exit) is returned as is: nothing after the dial is retried.
func (c *CommandOutputs) run(ctx context.Context, cmd string, logging *Logging) error {
	client, err := c.Connection.Dial(ctx)
	if err != nil {
		return err
	}
	session, err := client.NewSession()
	if err != nil {
		return err
	}
	defer session.Close()

	for k, v := range c.Environment {
		if err := session.Setenv(k, v); err != nil {
			p.GetLogger(ctx).Error(setenvHint(k))
			return fmt.Errorf("could not set environment variable %q: %w", k, err)
		}
	}
	if c.AddPreviousOutputInEnv == nil || *c.AddPreviousOutputInEnv {
		// Optimistic, as upstream: a refused variable is a warning, not an error.
		for _, kv := range [][2]string{{envStdout, c.Stdout}, {envStderr, c.Stderr}} {
			if kv[1] != "" {
				if err := session.Setenv(kv[0], kv[1]); err != nil {
					p.GetLogger(ctx).Warning(setenvHint(kv[0]))
				}
			}
		}
	}
	if c.Stdin != nil && len(*c.Stdin) > 0 {
		session.Stdin = strings.NewReader(*c.Stdin)
	}

	var stdout, stderr, both bytes.Buffer
	r, w := io.Pipe()
	outs := []io.Writer{&stdout, &both}
	if logging.logsStdout() {
		outs = append(outs, w)
	}
	errs := []io.Writer{&stderr, &both}
	if logging.logsStderr() {
		errs = append(errs, w)
	}
	session.Stdout = io.MultiWriter(outs...)
	session.Stderr = io.MultiWriter(errs...)
	logged := make(chan struct{})
	go func() { // each logged line is an ephemeral info status of the resource
		defer close(logged)
		scanner := bufio.NewScanner(r)
		for scanner.Scan() {
			p.GetLogger(ctx).InfoStatus(scanner.Text())
		}
	}()

	err = session.Run(cmd)
	w.Close()
	<-logged
	if err != nil {
		return fmt.Errorf("%w: running %q:\n%s", err, cmd, both.String())
	}
	c.BaseOutputs = BaseOutputs{
		Stdout: strings.TrimSuffix(stdout.String(), "\n"),
		Stderr: strings.TrimSuffix(stderr.String(), "\n"),
	}
	return nil
}

func setenvHint(key string) string {
	return fmt.Sprintf("Unable to set '%s'. This only works if your SSH server is configured to accept "+
		"these variables via AcceptEnv.", key)
}
