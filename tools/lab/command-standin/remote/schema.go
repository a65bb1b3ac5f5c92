// Package remote is the stand-in's command:remote module. Its Go types carry the field names,
// tags and defaults of pulumi-command v1.2.1's provider/pkg/provider/remote (command.go,
// connection.go, proxyConnection.go, baseOutputs.go, logging.go, common/inputs.go), because
// pulumi-go-provider derives the schema, Check's defaults and Diff's replacements from them.
package remote

import "github.com/pulumi/pulumi-go-provider/infer"

// Command is command:remote:Command.
type Command struct{}

func (c *Command) Annotate(a infer.Annotator) {
	a.Describe(&c, "Runs commands on a remote host over SSH when created, updated or deleted (lab stand-in).")
}

// ResourceInputs are upstream's common.ResourceInputs: `triggers` replaces on change.
type ResourceInputs struct {
	Triggers *[]any  `pulumi:"triggers,optional" provider:"replaceOnChanges"`
	Create   *string `pulumi:"create,optional"`
	Update   *string `pulumi:"update,optional"`
	Delete   *string `pulumi:"delete,optional"`
}

func (c *ResourceInputs) Annotate(a infer.Annotator) {
	a.Describe(&c.Triggers, "Values whose change replaces the resource.")
	a.Describe(&c.Create, "Runs on creation, and on any change of inputs when `update` is unset.")
	a.Describe(&c.Update, "Runs when inputs change; PULUMI_COMMAND_STDOUT/STDERR hold the previous outputs.")
	a.Describe(&c.Delete, "Runs on deletion; PULUMI_COMMAND_STDOUT/STDERR hold the previous outputs.")
}

// CommandInputs: `connection` is secret as a whole.
type CommandInputs struct {
	ResourceInputs
	Stdin                  *string           `pulumi:"stdin,optional"`
	Logging                *Logging          `pulumi:"logging,optional"`
	Connection             *Connection       `pulumi:"connection"                      provider:"secret"`
	Environment            map[string]string `pulumi:"environment,optional"`
	AddPreviousOutputInEnv *bool             `pulumi:"addPreviousOutputInEnv,optional"`
}

func (c *CommandInputs) Annotate(a infer.Annotator) {
	a.Describe(&c.Stdin, "Passed to the command's standard input.")
	a.Describe(&c.Logging, "Which of stdout and stderr are logged (default both); outputs are captured either way.")
	a.Describe(&c.Connection, "How to reach the host.")
	a.Describe(&c.Environment, "Environment variables set over SSH (the server must AcceptEnv them).")
	a.Describe(&c.AddPreviousOutputInEnv, "Set PULUMI_COMMAND_STDOUT/STDERR from the previous run (default true).")
}

// BaseOutputs are stdout and stderr, each without one trailing newline.
type BaseOutputs struct {
	Stdout string `pulumi:"stdout"`
	Stderr string `pulumi:"stderr"`
}

func (c *BaseOutputs) Annotate(a infer.Annotator) {
	a.Describe(&c.Stdout, "The command's standard output.")
	a.Describe(&c.Stderr, "The command's standard error.")
}

// CommandOutputs is the state: the inputs and the outputs.
type CommandOutputs struct {
	CommandInputs
	BaseOutputs
}

const (
	dialErrorDefault   = 10
	dialErrorUnlimited = -1
)

type connectionBase struct {
	User               *string  `pulumi:"user,optional"`
	Password           *string  `pulumi:"password,optional"           provider:"secret"`
	Host               *string  `pulumi:"host"`
	Port               *float64 `pulumi:"port,optional"`
	PrivateKey         *string  `pulumi:"privateKey,optional"         provider:"secret"`
	PrivateKeyPassword *string  `pulumi:"privateKeyPassword,optional" provider:"secret"`
	AgentSocketPath    *string  `pulumi:"agentSocketPath,optional"`
	DialErrorLimit     *int     `pulumi:"dialErrorLimit,optional"`
	PerDialTimeout     *int     `pulumi:"perDialTimeout,optional"`
	HostKey            *string  `pulumi:"hostKey,optional"`
}

// Connection is command:remote:Connection.
type Connection struct {
	connectionBase
	Proxy *ProxyConnection `pulumi:"proxy,optional"`
}

// ProxyConnection is command:remote:ProxyConnection, the jump host.
type ProxyConnection struct{ connectionBase }

// annotateBase sets upstream's defaults, which Check applies: user root, port 22,
// dialErrorLimit 10, perDialTimeout 15.
func annotateBase(a infer.Annotator, c *connectionBase) {
	a.Describe(&c.User, "User to log in as.")
	a.SetDefault(&c.User, "root")
	a.Describe(&c.Password, "Password to log in with.")
	a.Describe(&c.Host, "Address to connect to.")
	a.Describe(&c.Port, "Port to connect to.")
	a.SetDefault(&c.Port, 22)
	a.Describe(&c.PrivateKey, "Private key to log in with.")
	a.Describe(&c.PrivateKeyPassword, "Passphrase of the private key.")
	a.Describe(&c.AgentSocketPath, "SSH agent socket (default: SSH_AUTH_SOCK).")
	a.Describe(&c.DialErrorLimit, "Failed dials allowed before giving up; -1: unlimited.")
	a.SetDefault(&c.DialErrorLimit, dialErrorDefault)
	a.Describe(&c.PerDialTimeout, "Seconds each TCP connect may take; 0: no limit.")
	a.SetDefault(&c.PerDialTimeout, 15)
	a.Describe(&c.HostKey, "The pinned host key; when unset, any host key is accepted.")
}

func (c *Connection) Annotate(a infer.Annotator) {
	a.Describe(&c, "How to reach a remote host.")
	annotateBase(a, &c.connectionBase)
	a.Describe(&c.Proxy, "The jump host to reach it through.")
}

func (c *ProxyConnection) Annotate(a infer.Annotator) {
	a.Describe(&c, "How to reach the jump host.")
	annotateBase(a, &c.connectionBase)
}

// Logging is command:remote:Logging.
type Logging string

const (
	LogStdout          Logging = "stdout"
	LogStderr          Logging = "stderr"
	LogStdoutAndStderr Logging = "stdoutAndStderr"
	NoLogging          Logging = "none"
)

func (Logging) Values() []infer.EnumValue[Logging] {
	return []infer.EnumValue[Logging]{
		{Name: string(LogStdout), Value: LogStdout, Description: "Log stdout only"},
		{Name: string(LogStderr), Value: LogStderr, Description: "Log stderr only"},
		{Name: string(LogStdoutAndStderr), Value: LogStdoutAndStderr, Description: "Log both"},
		{Name: string(NoLogging), Value: NoLogging, Description: "Log neither"},
	}
}

func (l *Logging) logsStdout() bool { return l == nil || *l == LogStdout || *l == LogStdoutAndStderr }
func (l *Logging) logsStderr() bool { return l == nil || *l == LogStderr || *l == LogStdoutAndStderr }
