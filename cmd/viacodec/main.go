// Command viacodec runs viacodec's demo and tools.
//
//	viacodec demo [flags]
//	viacodec inspect [flags] FILE|-
//	viacodec pack [flags] FILE|-
//	viacodec unpack [flags] FILE|-
//	viacodec serve [flags] FILE|-
//	viacodec fetch [flags] MSGFILE|-
//	viacodec version
//
// The demo encodes and decodes a synthetic model inline, then runs
// federated rounds on loopback: a server (the demo's process), a
// pass-through relay and agents, each a process of its own: Go agents
// (the hidden command "agent") and, with -python, a Python agent
// (bindings/python/examples/fl_agent.py); it lives in internal/demo.
// inspect prints a message in CBOR diagnostic notation and summarises its
// batches, arrays and lazy refs; pack and unpack convert between a message
// and a safetensors or .npz file; serve publishes a file's arrays by
// reference and fetch downloads them from another process.
//
// `viacodec -h` and `viacodec COMMAND -h` print usage on standard output;
// a command's usage line is made from its flag set, so it lists every flag.
// An error is one line on standard error and exit status 1; a usage error
// (unknown command, bad flag or arguments) exits with status 2.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cli"
	"github.com/viacodec/viacodec/cmd/viacodec/internal/demo"
)

// command is one subcommand.
type command struct {
	name    string
	args    string // the arguments, after the flags the usage line lists
	summary string // one line for the command list
	about   string // a paragraph for the command's own usage
	run     func(args []string) error
	hidden  bool // not listed: a process the demo starts
}

var commands = []command{
	{
		name:    "demo",
		summary: "encode a synthetic model inline, then run federated rounds on loopback",
		about: "Encodes and decodes a synthetic model inline, checks every byte and prints sizes\n" +
			"and throughput. Then runs federated rounds on loopback: this process is the\n" +
			"server, a pass-through relay and the agents are processes of their own (-agents\n" +
			"Go agents and, with -python, a Python agent). Each round the server sends the\n" +
			"model by reference through the relay, the agents download it from the server,\n" +
			"train, and send their updates back the same way; the server averages them and\n" +
			"checks the average against its own computation. Per hop it prints the bytes\n" +
			"moved and held, time, throughput, SHA-256 at source and receiver and peak\n" +
			"memory; any mismatch is an error.",
		run: demo.Run,
	},
	{
		name:    "inspect",
		args:    "FILE|-",
		summary: "print a message in CBOR diagnostic notation and summarise its arrays",
		about: "Prints the message in FILE (- for standard input) in CBOR diagnostic notation\n" +
			"(RFC 8949 §8): array payloads elided, with a comment giving dtype and bytes;\n" +
			"tokens shortened to their first two bytes. Then a summary: the batches and their\n" +
			"sources, the inline arrays and the lazy refs, with dtype, shape and bytes.\n" +
			"Nothing is downloaded.",
		run: runInspect,
	},
	{
		name:    "pack",
		args:    "FILE|-",
		summary: "convert a safetensors or .npz file into a message",
		about: "Reads a safetensors or .npz file (- for standard input, with -format) and writes\n" +
			"a message whose body maps each tensor name to its array, inline. Safetensors\n" +
			"metadata travels under the key \"__metadata__\" as a map of text to text.",
		run: runPack,
	},
	{
		name:    "unpack",
		args:    "FILE|-",
		summary: "convert a message into a safetensors or .npz file",
		about: "Reads a message whose body maps tensor names to inline arrays (as pack writes\n" +
			"it) and writes a safetensors or .npz file, in the format -format names or the\n" +
			"extension of OUT tells. A dtype the format cannot carry is an error: safetensors\n" +
			"has no complex128; npz has no bfloat16, float8 or metadata (-drop-metadata\n" +
			"leaves it out).",
		run: runUnpack,
	},
	{
		name:    "serve",
		args:    "FILE|-",
		summary: "publish a file's arrays by reference and serve them until they are fetched",
		about: "Reads a safetensors, .npz or message file (.cbor) and publishes its arrays by\n" +
			"reference: the message it writes (to standard output, or -o MSGFILE) is small,\n" +
			"and receivers download the arrays straight from this process, which serves\n" +
			"them until -receivers receivers have confirmed, -timeout passes or Ctrl-C.\n" +
			"It shows each receiver's progress, on standard error when the message goes to\n" +
			"standard output. Exit status 0 once every receiver confirmed.\n\n" +
			"Across sites, serve needs TLS (-tls-cert and -tls-key; receivers trust it with\n" +
			"fetch -tls-ca): a message carries bearer tokens, and serve will not send them\n" +
			"in the clear. Without TLS it serves on loopback only, -listen and -advertise\n" +
			"included. -allow-cleartext serves plain HTTP beyond loopback anyway, on a\n" +
			"network you trust.",
		run: runServe,
	},
	{
		name:    "fetch",
		args:    "MSGFILE|-",
		summary: "download the arrays a message refers to into a safetensors, .npz or message file",
		about: "Reads a message (as serve writes it) from MSGFILE or standard input, downloads\n" +
			"the arrays it refers to straight from their sources, with progress, and writes\n" +
			"them to OUT: a safetensors or .npz file, or a message with the arrays inline\n" +
			"(.cbor), as -format or the extension of OUT says. Progress goes to standard\n" +
			"output, or to standard error when OUT is standard output: a bar on a terminal,\n" +
			"a line every 2 seconds elsewhere.",
		run: runFetch,
	},
	{
		name:    "version",
		summary: "print the command's version, the wire format it speaks and its Go release",
		about: "Prints the version of viacodec, the wire format version it writes and reads,\n" +
			"the Go release that built it and, when built from a git checkout, the commit.",
		run: runVersion,
	},
	{
		name:    "agent",
		summary: "a Go agent of the demo (started by demo)",
		about: "A Go agent of the demo's federated rounds in a process of its own: it reads\n" +
			"tasks in frames on standard input and answers on standard output\n" +
			"(cmd/viacodec/internal/demo/proto.go). The demo starts it.",
		run:    demo.RunAgent,
		hidden: true,
	},
	{
		name:    "relay",
		summary: "the relay of the demo (started by demo)",
		about: "The demo's relay in a process of its own: it decodes each message in frames on\n" +
			"standard input with pass-through on and forwards it on standard output, holding\n" +
			"and downloading no array byte (cmd/viacodec/internal/demo/proto.go); a frame that asks\n" +
			"for its cache re-points the message at a caching relay it runs, which fetches each piece\n" +
			"from the server once for every agent (hostdl.Relay). The demo starts it.",
		run:    demo.RunRelay,
		hidden: true,
	},
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run runs the command line args and returns the exit status.
func run(args []string) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-version", "--version":
		name = "version"
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && name == "help" {
			if cmd, ok := lookup(args[1]); ok {
				return runCommand(cmd, []string{"-h"})
			}
		}
		usage(os.Stdout)
		return 0
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(os.Stderr, "viacodec: unknown command %q\n\n", name)
		usage(os.Stderr)
		return 2
	}
	return runCommand(cmd, args[1:])
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func runCommand(cmd command, args []string) int {
	err := cmd.run(args)
	var help *cli.HelpRequest
	var bad *cli.UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &help):
		commandUsage(os.Stdout, cmd, help.Flags)
		return 0
	case errors.As(err, &bad):
		fmt.Fprintf(os.Stderr, "viacodec %s: %s (see 'viacodec %s -h')\n", cmd.name, cli.Message(bad, nil), cmd.name)
		return 2
	default:
		fmt.Fprintf(os.Stderr, "viacodec %s: %s\n", cmd.name, cli.Message(err, optionFlags))
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: viacodec <command> [flags] [arguments]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintln(w, "\n'viacodec <command> -h' describes a command and its flags.")
}

func commandUsage(w io.Writer, cmd command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s\n\n%s\n", usageLine(cmd, fs), cmd.about)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// usageLine lists a command's flags, from its flag set so that it cannot
// miss one, and its arguments, wrapped to 80 columns.
func usageLine(cmd command, fs *flag.FlagSet) string {
	var words []string
	fs.VisitAll(func(f *flag.Flag) {
		value, _ := flag.UnquoteUsage(f)
		if value == "" {
			words = append(words, "[-"+f.Name+"]")
		} else {
			words = append(words, "[-"+f.Name+" "+value+"]")
		}
	})
	if cmd.args != "" {
		words = append(words, cmd.args)
	}
	line := "usage: viacodec " + cmd.name
	indent := strings.Repeat(" ", len(line)+1)
	var b strings.Builder
	for _, word := range words {
		if len(line)+1+len(word) > 80 {
			b.WriteString(line + "\n")
			line = indent + word
			continue
		}
		line += " " + word
	}
	b.WriteString(line)
	return b.String()
}
