// cnitool: a libcni client for the tests, driving plugins exactly as container runtimes do
// (containerd, CRI-O, podman and Multus all call through libcni). Written for Flowline against
// the libcni API of Debian's golang-github-containernetworking-cni-dev; built offline by
// cni-plugin/scripts/build-cnitool.sh.
//
//	cnitool add|check|del <network-name> <netns-path>
//	cnitool validate <network-name>
//	cnitool version <plugin-type>
//
// Environment: NETCONFPATH (folder of *.conflist, default /etc/cni/net.d), CNI_PATH,
// CNI_IFNAME (default eth0), CNI_CONTAINERID (default derived from the netns path),
// CNI_ARGS ("K=V;K2=V2"), CNI_CACHEDIR (libcni's result cache, default /var/lib/cni).
//
// A plugin's error is printed as the spec's error JSON on stdout (exit 1), so a test can see
// the code that came back through libcni; other errors go to stderr (exit 2).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

func fail(err error) {
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		out, _ := json.Marshal(cniErr)
		fmt.Println(string(out))
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "cnitool:", err)
	os.Exit(2)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: cnitool add|check|del <network-name> <netns-path> | validate <network-name> | version <plugin-type>")
	os.Exit(2)
}

func parseArgs(raw string) ([][2]string, error) {
	var out [][2]string
	for _, pair := range strings.Split(raw, ";") {
		if pair == "" {
			continue
		}
		kv := strings.SplitN(pair, "=", 2)
		if len(kv) != 2 {
			return nil, fmt.Errorf("CNI_ARGS: %q is not KEY=VALUE", pair)
		}
		out = append(out, [2]string{kv[0], kv[1]})
	}
	return out, nil
}

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	command, target := os.Args[1], os.Args[2]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cni := libcni.NewCNIConfigWithCacheDir(
		filepath.SplitList(env("CNI_PATH", "/opt/cni/bin")), env("CNI_CACHEDIR", ""), nil)

	if command == "version" {
		info, err := cni.GetVersionInfo(ctx, target)
		if err != nil {
			fail(err)
		}
		out, _ := json.Marshal(map[string]interface{}{"supportedVersions": info.SupportedVersions()})
		fmt.Println(string(out))
		return
	}

	list, err := libcni.LoadConfList(env("NETCONFPATH", "/etc/cni/net.d"), target)
	if err != nil {
		fail(err)
	}
	if command == "validate" {
		caps, err := cni.ValidateNetworkList(ctx, list)
		if err != nil {
			fail(err)
		}
		out, _ := json.Marshal(map[string]interface{}{"capabilities": caps})
		fmt.Println(string(out))
		return
	}
	if len(os.Args) != 4 {
		usage()
	}
	netns := os.Args[3]
	sum := sha256.Sum256([]byte(netns))
	args, err := parseArgs(os.Getenv("CNI_ARGS"))
	if err != nil {
		fail(err)
	}
	rt := &libcni.RuntimeConf{
		ContainerID: env("CNI_CONTAINERID", "cnitool-"+hex.EncodeToString(sum[:])[:20]),
		NetNS:       netns,
		IfName:      env("CNI_IFNAME", "eth0"),
		Args:        args,
	}

	switch command {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		if err := result.Print(); err != nil {
			fail(err)
		}
		fmt.Println()
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	default:
		usage()
	}
}
