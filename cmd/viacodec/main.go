// Command viacodec runs viacodec's demo and tools.
//
//	viacodec demo [-size MiB]   encode and decode a synthetic model, verify it, report throughput
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
	fmt.Fprintln(os.Stderr, "usage: viacodec demo [-size MiB]")
	flag.PrintDefaults()
	os.Exit(2)
}
