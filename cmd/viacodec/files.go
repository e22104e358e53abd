package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cli"
	"github.com/viacodec/viacodec/internal/tensorfile"
)

// readInput returns the bytes of a file, or of standard input for "-".
func readInput(path string) ([]byte, error) {
	if path == "-" {
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return data, nil
	}
	return os.ReadFile(path)
}

// writeOutput calls write with a writer to path, or to standard output
// for "-". A file appears only once it is complete: write goes to a
// temporary file beside it, renamed over path on success and removed on
// error.
func writeOutput(path string, write func(io.Writer) error) error {
	if path == "-" {
		if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return errors.New("will not write binary data to a terminal: give -o FILE or redirect standard output")
		}
		w := bufio.NewWriterSize(os.Stdout, 1<<20)
		if err := write(w); err != nil {
			return err
		}
		return w.Flush()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(w); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// fileFormat returns the format that -format names, or else the one that
// path's extension tells.
func fileFormat(flagValue, path, role string) (tensorfile.Format, error) {
	if flagValue != "" {
		f, err := tensorfile.ParseFormat(flagValue)
		if err != nil {
			return 0, cli.Usagef("-format %q: want safetensors or npz", flagValue)
		}
		return f, nil
	}
	if path == "-" {
		return 0, cli.Usagef("give -format for the %s on a standard stream", role)
	}
	f, err := tensorfile.FormatOf(path)
	if err != nil {
		return 0, cli.Usagef("cannot tell the format of %s %q from its extension: give -format, or name it .safetensors or .npz", role, path)
	}
	return f, nil
}

// displayName names an input in messages: its path, or standard input.
func displayName(path string) string {
	if path == "-" {
		return "standard input"
	}
	return path
}

// contentFormat is fileFormat for a file that may also hold a message:
// -format "message", or the extension .cbor, names one (message is true,
// the format 0).
func contentFormat(flagValue, path, role string) (f tensorfile.Format, message bool, err error) {
	switch {
	case flagValue == "message":
		return 0, true, nil
	case flagValue != "":
		f, err := tensorfile.ParseFormat(flagValue)
		if err != nil {
			return 0, false, cli.Usagef("-format %q: want safetensors, npz or message", flagValue)
		}
		return f, false, nil
	case path == "-":
		return 0, false, cli.Usagef("give -format for the %s on a standard stream", role)
	case strings.EqualFold(filepath.Ext(path), ".cbor"):
		return 0, true, nil
	}
	f, err = tensorfile.FormatOf(path)
	if err != nil {
		return 0, false, cli.Usagef("cannot tell the format of %s %q from its extension: give -format, or name it .safetensors, .npz or .cbor (a message)", role, path)
	}
	return f, false, nil
}

// statusOutput is where a command that writes data to path reports what
// it does: standard output, unless the data goes there.
func statusOutput(path string) *os.File {
	if path == "-" {
		return os.Stderr
	}
	return os.Stdout
}
