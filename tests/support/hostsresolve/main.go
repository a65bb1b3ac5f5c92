// Command hostsresolve resolves and fetches an image's manifest the way MicroK8s' containerd
// does, through the registry hosts directory (certs.d/<registry>/hosts.toml) it is given:
// containerd's own resolver and hosts.toml reader, built from its module (tests only).
//
//	hostsresolve <hosts dir> <image reference>
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/containerd/remotes/docker/config"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: hostsresolve <hosts dir> <image reference>")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resolver := docker.NewResolver(docker.ResolverOptions{
		Hosts: config.ConfigureHosts(ctx, config.HostOptions{HostDir: config.HostDirFromRoot(os.Args[1])}),
	})
	name, desc, err := resolver.Resolve(ctx, os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "resolve:", err)
		os.Exit(1)
	}
	fetcher, err := resolver.Fetcher(ctx, name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fetcher:", err)
		os.Exit(1)
	}
	rc, err := fetcher.Fetch(ctx, desc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fetch:", err)
		os.Exit(1)
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "read:", err)
		os.Exit(1)
	}
	fmt.Printf("%s %s %d\n", desc.Digest, desc.MediaType, len(body))
}
