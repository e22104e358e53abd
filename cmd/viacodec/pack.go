package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cli"
	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/tensorfile"
)

// runPack converts a safetensors or .npz file into a message.
func runPack(args []string) error {
	fs := flag.NewFlagSet("pack", flag.ContinueOnError)
	format := fs.String("format", "", "format of the input, `safetensors|npz` (default: from its extension)")
	out := fs.String("o", "-", "write the message to `OUT`; - for standard output")
	files, err := cli.ParseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return cli.Usagef("expects one input FILE, or - for standard input")
	}
	in := files[0]
	ff, err := fileFormat(*format, in, "input")
	if err != nil {
		return err
	}
	data, err := readInput(in)
	if err != nil {
		return err
	}
	file, err := tensorfile.Read(ff, data)
	if err != nil {
		return fmt.Errorf("%s: %w", displayName(in), err)
	}
	body, err := file.Body()
	if err != nil {
		return fmt.Errorf("%s: %w", displayName(in), err)
	}
	// Encode writes the message's skeleton and keeps the payloads as views
	// of data, so WriteTo copies each array once, into the output.
	msg, err := defaultEnc.Encode(body)
	if err != nil {
		return err
	}
	return writeOutput(*out, func(w io.Writer) error {
		_, err := msg.WriteTo(w)
		return err
	})
}

// runUnpack converts a message into a safetensors or .npz file.
func runUnpack(args []string) error {
	fs := flag.NewFlagSet("unpack", flag.ContinueOnError)
	format := fs.String("format", "", "format to write, `safetensors|npz` (default: from the extension of -o)")
	out := fs.String("o", "-", "write to `OUT`; - for standard output (then -format is needed)")
	dropMetadata := fs.Bool("drop-metadata", false, "leave out the message's "+tensorfile.MetadataKey+" (npz cannot carry it)")
	files, err := cli.ParseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return cli.Usagef("expects one message FILE, or - for standard input")
	}
	in := files[0]
	ff, err := fileFormat(*format, *out, "output")
	if err != nil {
		return err
	}
	data, err := readInput(in)
	if err != nil {
		return err
	}
	body, err := passThrough.Decode(data)
	if err != nil {
		return decodeError(in, data, err)
	}
	file, err := tensorfile.FromBody(body)
	if err != nil {
		return fmt.Errorf("%s: %w", displayName(in), err)
	}
	if *dropMetadata {
		file.Metadata = nil
	}
	return writeOutput(*out, func(w io.Writer) error { return tensorfile.Write(w, ff, file) })
}

var (
	defaultEnc = core.MustMode(core.EncOptions{}.EncMode())
	// passThrough decodes without downloading: references stay
	// *core.LazyRef values, and arrays alias the message's bytes.
	passThrough = core.MustMode(core.DecOptions{PassThrough: true, ZeroCopy: true}.DecMode())
)
