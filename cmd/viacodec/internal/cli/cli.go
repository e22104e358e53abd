// Package cli holds what the viacodec command's subcommands share: flag
// parsing that reports help and usage errors instead of printing them,
// Ctrl-C and timeouts, and progress on a terminal or in a log.
//
//	cli.go       ParseFlags, ParseArgs, HelpRequest, UsageError, Interruptible
//	progress.go  Progress: bars on a terminal, plain lines elsewhere
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HelpRequest is what ParseFlags returns for -h: the command prints its
// usage on standard output and exits 0.
type HelpRequest struct{ Flags *flag.FlagSet }

func (*HelpRequest) Error() string { return "help requested" }

// UsageError is a bad flag or argument: the command prints it with a
// pointer to -h and exits 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{fmt.Sprintf(format, args...)}
}

// ParseFlags parses a command's flags. Nothing is printed here: -h becomes
// a *HelpRequest and a bad flag a *UsageError, which the command reports.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	_, err := ParseArgs(fs, args)
	return err
}

// ParseArgs is ParseFlags for a command with arguments: flags may come
// before and after them (pack m.safetensors -o m.cbor), and everything
// after "--" is an argument. It returns the arguments.
func ParseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var positional []string
	for {
		err := fs.Parse(args)
		switch {
		case errors.Is(err, flag.ErrHelp):
			return nil, &HelpRequest{fs}
		case err != nil:
			return nil, &UsageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// Interruptible returns a context that ends on Ctrl-C (SIGINT or SIGTERM)
// or, if d > 0, after d.
func Interruptible(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if d <= 0 {
		return ctx, stop
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, func() { cancel(); stop() }
}

// Ended says why ctx ended: a timeout, or an interrupt.
func Ended(ctx context.Context, d time.Duration) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("timed out after %v", d)
	}
	return "interrupted"
}

// Plural writes n and noun, with an s unless n is 1.
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "ch") {
		return strconv.Itoa(n) + " " + noun + "es"
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// Message is the one line a command prints for err: without the package
// prefixes of viacodec's Go errors ("core: ", "hostdl: ", "tensorfile: ",
// "offload: "),
// which name code, not a fault, and with the names of the Go options a
// command sets from its flags replaced by flags (nil for none).
func Message(err error, flags *strings.Replacer) string {
	parts := strings.Split(oneLine(err.Error()), ": ")
	kept := parts[:0]
	for _, p := range parts {
		if !goPackages[p] {
			kept = append(kept, p)
		}
	}
	s := strings.Join(kept, ": ")
	if flags != nil {
		s = flags.Replace(s)
	}
	return s
}

// goPackages are the packages whose errors a command may print.
var goPackages = map[string]bool{"core": true, "hostdl": true, "tensorfile": true, "offload": true}

// oneLine keeps a text to one line, its spaces single.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
