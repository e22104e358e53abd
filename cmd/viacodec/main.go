// Command viacodec runs viacodec's demo and tools.
//
//	viacodec demo [-size MiB] [-agents N] [-python CMD]
//
// The demo encodes and decodes a synthetic model inline, then runs a
// federated round on loopback: server, pass-through relay, N Go agents and,
// with -python, a Python agent (bindings/python/examples/fl_agent.py).
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "demo":
		err = runDemo(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "viacodec:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: viacodec demo [-size MiB] [-agents N] [-python CMD]")
	flag.PrintDefaults()
	os.Exit(2)
}
