package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/term"

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
// for "-", which must not be a terminal. A regular file, or a new one,
// appears only once it is complete: write goes to a temporary file beside
// it (beside the target of a symlink, which stays a link), renamed over
// it on success, and removed on error; an existing file keeps its mode.
// Anything else at path, a device or a FIFO, is written in place, as the
// shell's > would.
func writeOutput(path string, write func(io.Writer) error) error {
	if path == "-" {
		if term.IsTerminal(int(os.Stdout.Fd())) {
			return errors.New("will not write binary data to a terminal: give -o FILE or redirect standard output")
		}
		return writeBuffered(os.Stdout, write)
	}
	target, mode, err := regularTarget(path)
	if err != nil {
		return err
	}
	if target == "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return outputError(path, err)
		}
		if err := writeBuffered(f, write); err != nil {
			f.Close()
			return err
		}
		return outputError(path, f.Close())
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".*.tmp")
	if err != nil {
		return outputError(path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if err := writeBuffered(tmp, write); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return outputError(path, err)
	}
	if err := tmp.Close(); err != nil {
		return outputError(path, err)
	}
	return outputError(path, os.Rename(tmp.Name(), target))
}

// regularTarget returns the regular file that writing to path replaces
// (path, or the file its symlinks lead to) and the mode the new file
// gets (the old one's, or 0644); target is "" when path is something
// else, a device or a FIFO, to be written in place.
func regularTarget(path string) (target string, mode os.FileMode, err error) {
	mode = 0o644
	switch fi, err := os.Stat(path); {
	case err == nil && !fi.Mode().IsRegular():
		return "", 0, nil
	case err == nil:
		mode = fi.Mode().Perm()
		if target, err = filepath.EvalSymlinks(path); err != nil {
			return "", 0, outputError(path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if target, err = danglingTarget(path); err != nil {
			return "", 0, outputError(path, err)
		}
	default:
		return "", 0, outputError(path, err)
	}
	return target, mode, nil
}

// writeBuffered calls write with a buffer over w and flushes it.
func writeBuffered(w io.Writer, write func(io.Writer) error) error {
	b := bufio.NewWriterSize(w, 1<<20)
	if err := write(b); err != nil {
		return err
	}
	return b.Flush()
}

// danglingTarget follows path, which does not exist, through symlinks to
// the file they name, to be created.
func danglingTarget(path string) (string, error) {
	for range 40 { // as many links as Linux follows
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			return path, nil
		}
		link, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	return "", syscall.ELOOP
}

// outputError names the output by the path the user gave, whatever file
// the failed call worked on (a temporary file, a link's target).
func outputError(path string, err error) error {
	if err == nil {
		return nil
	}
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		err = pe.Err
	} else if le, ok := errors.AsType[*os.LinkError](err); ok {
		err = le.Err
	}
	return fmt.Errorf("cannot write %s: %w", path, err)
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

// decodeError is the error of data from in that did not decode as a
// message: a safetensors or .npz file says so, and what reads it.
func decodeError(in string, data []byte, err error) error {
	if f, ok := tensorfile.Detect(data); ok {
		what := "a safetensors file"
		if f == tensorfile.NPZ {
			what = "an .npz file"
		}
		return fmt.Errorf("%s: not a viacodec message (%s? try viacodec pack)", displayName(in), what)
	}
	return fmt.Errorf("%s: %w", displayName(in), err)
}
