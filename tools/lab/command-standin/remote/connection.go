package remote

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/retry"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// sshConfig: a set hostKey is pinned (and the only host key algorithm offered); an unset one
// accepts any key. perDialTimeout becomes ClientConfig.Timeout, which bounds the TCP connect
// only. Auth: the private key, then the password, then an agent (agentSocketPath or SSH_AUTH_SOCK).
func (con *connectionBase) sshConfig() (*ssh.ClientConfig, error) {
	config := &ssh.ClientConfig{
		User:            *con.User,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), //nolint:gosec // upstream's behaviour without hostKey
		Timeout:         time.Second * time.Duration(*con.PerDialTimeout),
	}
	if con.HostKey != nil {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*con.HostKey))
		if err != nil {
			return nil, fmt.Errorf("failed to parse host key: %w", err)
		}
		config.HostKeyCallback = ssh.FixedHostKey(key)
		config.HostKeyAlgorithms = []string{key.Type()}
	}
	if con.PrivateKey != nil {
		var signer ssh.Signer
		var err error
		if con.PrivateKeyPassword != nil {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(*con.PrivateKey), []byte(*con.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(*con.PrivateKey))
		}
		if err != nil {
			return nil, err
		}
		config.Auth = append(config.Auth, ssh.PublicKeys(signer))
	}
	if con.Password != nil {
		password := *con.Password
		config.Auth = append(config.Auth, ssh.Password(password),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range questions {
					answers[i] = password
				}
				return answers, nil
			}))
	}
	socket := con.AgentSocketPath
	if socket == nil {
		if env := os.Getenv("SSH_AUTH_SOCK"); env != "" {
			socket = &env
		}
	}
	if socket != nil {
		conn, err := net.Dial("unix", *socket)
		if err != nil {
			return nil, err
		}
		config.Auth = append(config.Auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
	}
	return config, nil
}

func (con *connectionBase) dialErrorLimit() int {
	if con.DialErrorLimit == nil {
		return dialErrorDefault
	}
	return *con.DialErrorLimit
}

// dialWithRetry tries f until it succeeds or has failed limit+1 times (limit -1: forever),
// pausing between tries as pulumi's retry.Until does by default: 100 ms, x1.5 each time, at
// most 5 s. Any error counts, a refused host key included; the context ends it early.
func dialWithRetry[T any](ctx context.Context, msg string, limit int, f func() (T, error)) (T, error) {
	var failure error
	ok, data, err := retry.Until(ctx, retry.Acceptor{
		Accept: func(try int, _ time.Duration) (bool, any, error) {
			result, err := f()
			if err == nil {
				return true, result, nil
			}
			failure = err
			dials := try + 1
			if limit > dialErrorUnlimited && dials > limit {
				return true, nil, fmt.Errorf("after %d failed attempts: %w", try, failure)
			}
			shown := "inf"
			if limit != dialErrorUnlimited {
				shown = fmt.Sprint(limit)
			}
			p.GetLogger(ctx).InfoStatusf("%s %d/%s failed: retrying", msg, dials, shown)
			return false, nil, nil
		},
	})
	if ok && err == nil {
		return data.(T), nil
	}
	var zero T
	if err == nil {
		err = ctx.Err()
	}
	return zero, err
}

// Dial connects to the host, directly or through the jump host. Through a jump host: the dial
// to the jump host retries on its own limit; the TCP connect from it and the SSH handshake over
// that connection each retry on the target's limit, with no timeout of their own.
func (c *Connection) Dial(ctx context.Context) (*ssh.Client, error) {
	config, err := c.sshConfig()
	if err != nil {
		return nil, err
	}
	endpoint := net.JoinHostPort(*c.Host, fmt.Sprintf("%d", int(*c.Port)))
	tries := c.dialErrorLimit()
	if c.Proxy == nil {
		return dialWithRetry(ctx, "Dial", tries, func() (*ssh.Client, error) {
			return ssh.Dial("tcp", endpoint, config)
		})
	}
	proxyConfig, err := c.Proxy.sshConfig()
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	jump, err := dialWithRetry(ctx, "Dial proxy", c.Proxy.dialErrorLimit(), func() (*ssh.Client, error) {
		return ssh.Dial("tcp", net.JoinHostPort(*c.Proxy.Host, fmt.Sprintf("%d", int(*c.Proxy.Port))), proxyConfig)
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	conn, err := dialWithRetry(ctx, "Dial from proxy", tries, func() (net.Conn, error) {
		return jump.Dial("tcp", endpoint)
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	var chans <-chan ssh.NewChannel
	var reqs <-chan *ssh.Request
	client, err := dialWithRetry(ctx, "Dial", tries, func() (ssh.Conn, error) {
		sc, ch, r, err := ssh.NewClientConn(conn, endpoint, config)
		chans, reqs = ch, r
		return sc, err
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return ssh.NewClient(client, chans, reqs), nil
}
