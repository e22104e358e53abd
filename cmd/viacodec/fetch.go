package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cli"
	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
	"github.com/viacodec/viacodec/internal/tensorfile"
	"github.com/viacodec/viacodec/offload"
)

// runFetch downloads the arrays a message refers to and writes the
// message's content to a file.
func runFetch(args []string) error {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	out := fs.String("o", "-", "write to `OUT`: .safetensors, .npz or .cbor (a message, arrays inline); - for standard output (then -format)")
	format := fs.String("format", "", "format to write, `safetensors|npz|message` (default: from the extension of -o)")
	receiver := fs.String("receiver", "", "receiver id `NAME` the source records (default: a random UUID)")
	timeout := fs.Duration("timeout", 0, "give up after `D` (default: no limit)")
	dropMetadata := fs.Bool("drop-metadata", false, "leave out the message's "+tensorfile.MetadataKey+" (npz cannot carry it)")
	tf := addTLSFlags(fs, "the client")
	files, err := cli.ParseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(files) != 1:
		return cli.Usagef("expects one message FILE, or - for standard input")
	case *timeout < 0:
		return cli.Usagef("-timeout %v is negative", *timeout)
	}
	in := files[0]
	ff, isMessage, err := contentFormat(*format, *out, "output")
	if err != nil {
		return err
	}
	data, err := readInput(in)
	if err != nil {
		return err
	}
	// The sources of the batches name the downloads while they run.
	sources := map[uuid.UUID]string{}
	if plan, err := passThrough.Plan(data); err == nil {
		for _, b := range plan.Batches {
			sources[b.RefID] = b.Source
		}
	}

	status := statusOutput(*out)
	prog := cli.NewProgress(status)
	defer prog.Close()
	label := func(ref uuid.UUID) string { return "from " + sources[ref] }
	client, err := hostdl.NewClient(hostdl.ClientOptions{
		Receiver: *receiver,
		TLSFiles: tf.files(),
		Logger:   slog.New(slog.DiscardHandler),
		Progress: func(ref uuid.UUID, done, total int64) { prog.Update(ref.String(), label(ref), done, total) },
	})
	if err != nil {
		return err
	}
	defer client.Close()
	dec, err := core.DecOptions{Fetcher: client}.DecMode()
	if err != nil {
		return err
	}
	// A safetensors file is written as the arrays download, through the
	// offload package: the command's memory does not grow with the model.
	var target string
	var mode os.FileMode
	if !isMessage && ff == tensorfile.Safetensors && *out != "-" {
		if target, mode, err = regularTarget(*out); err != nil {
			return err
		}
	}
	ctx, stop := cli.Interruptible(*timeout)
	defer stop()
	start := time.Now()
	var v any
	var offloaded *offload.Value
	if target != "" {
		offloaded, err = fetchToFile(ctx, dec, data, target, mode, *dropMetadata)
	} else {
		v, err = dec.DecodeContext(ctx, data)
	}
	took := time.Since(start)
	for ref := range sources {
		prog.End(ref.String())
	}
	if err != nil {
		if fe, ok := errors.AsType[*offload.FileError](err); ok {
			return outputError(*out, fe.Err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", cli.Ended(ctx, *timeout), err)
		}
		return decodeError(in, data, err)
	}
	if offloaded != nil {
		held, _ := cli.ArrayBytes(offloaded.Body)
		if err := offloaded.Close(); err != nil {
			return outputError(*out, err)
		}
		prog.Printf("fetched %s from %s in %v (%s); wrote %s\n", cli.FormatBytes(held), cli.Plural(len(sources), "source"),
			took.Round(time.Millisecond), cli.FormatRate(held, took), outputName(*out))
		return nil
	}
	held, _ := cli.ArrayBytes(v)

	var write func(io.Writer) error
	if isMessage {
		msg, err := defaultEnc.Encode(v)
		if err != nil {
			return err
		}
		write = func(w io.Writer) error {
			_, err := msg.WriteTo(w)
			return err
		}
	} else {
		file, err := tensorfile.FromBody(v)
		if err != nil {
			return fmt.Errorf("%s: %w", displayName(in), err)
		}
		if *dropMetadata {
			file.Metadata = nil
		}
		write = func(w io.Writer) error { return tensorfile.Write(w, ff, file) }
	}
	if err := writeOutput(*out, write); err != nil {
		return err
	}
	prog.Printf("fetched %s from %s in %v (%s); wrote %s\n", cli.FormatBytes(held), cli.Plural(len(sources), "source"),
		took.Round(time.Millisecond), cli.FormatRate(held, took), outputName(*out))
	return nil
}

// fetchToFile decodes data with its arrays landing in a safetensors file
// at target, which appears only once complete.
func fetchToFile(ctx context.Context, dec *core.DecMode, data []byte, target string, mode os.FileMode, dropMetadata bool) (*offload.Value, error) {
	p, err := dec.Plan(data)
	if err != nil {
		return nil, err
	}
	meta, err := tensorfile.PlanMetadata(p.Body)
	if err != nil {
		return nil, err // named after in by decodeError, as FromBody's error is
	}
	if dropMetadata {
		meta = nil
	}
	return offload.Place(ctx, dec, p, offload.Options{Path: target, Keep: true, Mode: mode, Metadata: meta})
}

func outputName(path string) string {
	if path == "-" {
		return "standard output"
	}
	return path
}
