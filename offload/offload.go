package offload

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/tensorfile"
)

// Options says where an offloaded message's file goes. Exactly one of
// Dir and Path is set.
type Options struct {
	// Dir is a directory in which the file is created under a fresh name,
	// viacodec-*.safetensors. It must exist and be writable.
	Dir string
	// Path is the file's exact path: it is written under a temporary name
	// beside Path and renamed to Path only once complete, replacing any
	// file there.
	Path string
	// Keep leaves the file when the value is closed.
	Keep bool
	// Mode is the file's permissions; zero means 0600.
	Mode fs.FileMode
	// Metadata is the file's __metadata__ (safetensors' map of text to
	// text); nil for none.
	Metadata map[string]string
}

func (o Options) check() error {
	if (o.Dir == "") == (o.Path == "") {
		return errorf(core.KindInvalid, nil, "set one of Options.Dir and Options.Path")
	}
	return nil
}

// File is a safetensors file being filled through a shared mapping.
type File struct {
	path  string // where it is now
	final string // where Seal renames it to ("" for a file made in Dir)
	keep  bool
	mode  fs.FileMode

	f       *os.File
	mem     []byte   // the whole file, mapped shared
	slots   [][]byte // each slot's bytes within mem; nil for a slot not in the file
	offsets []int64  // each slot's offset in the file, -1 when not in it

	trimStop chan struct{}
	trimDone chan struct{}

	mu     sync.Mutex
	sealed bool
	closed bool
}

// Create creates the file that holds the arrays of slots (a plan's), named
// names[i]; a slot that is not an array (a byte string of a skeleton
// plan) gets no place in the file. The file is reserved on disk at its
// full size and its header written; the arrays' bytes are then written
// through Slot(i) or Writer(i), and Seal makes the file complete.
func Create(o Options, slots []core.Slot, names []string) (*File, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if len(names) != len(slots) {
		return nil, errorf(core.KindInvalid, nil, "%d names for %d slots", len(names), len(slots))
	}
	var specs []tensorfile.Spec
	var index []int // specs[j] is slot index[j]
	for i, s := range slots {
		if !s.DType.Valid() {
			continue
		}
		specs = append(specs, tensorfile.Spec{Name: names[i], DType: s.DType, Shape: s.Shape, Order: s.Order, Bytes: s.Bytes})
		index = append(index, i)
	}
	header, offsets, err := tensorfile.SafetensorsLayout(specs, o.Metadata)
	if err != nil {
		return nil, errorf(core.KindOf(err), err, "lay out the file")
	}
	size := int64(len(header))
	for _, s := range specs {
		size += s.Bytes
	}

	dir, pattern := o.Dir, "viacodec-*.safetensors"
	if o.Path != "" {
		dir, pattern = filepath.Dir(o.Path), "."+filepath.Base(o.Path)+".*.partial"
	}
	osf, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, fileError(err, "create a file in %s", dir)
	}
	f := &File{path: osf.Name(), final: o.Path, keep: o.Keep, mode: o.Mode, f: osf,
		slots: make([][]byte, len(slots)), offsets: make([]int64, len(slots))}
	if err := f.fill(header, size); err != nil {
		f.abort()
		return nil, err
	}
	for i := range f.offsets {
		f.offsets[i] = -1
	}
	for j, i := range index {
		off := offsets[j]
		f.offsets[i] = off
		f.slots[i] = f.mem[off : off+specs[j].Bytes : off+specs[j].Bytes]
	}
	f.trimStop, f.trimDone = make(chan struct{}), make(chan struct{})
	go f.trim()
	return f, nil
}

// fill reserves the file's blocks, writes the header and maps the file.
func (f *File) fill(header []byte, size int64) error {
	if err := reserve(f.f, size); err != nil {
		return fileError(err, "reserve %d bytes for %s", size, f.path)
	}
	if _, err := f.f.WriteAt(header, 0); err != nil {
		return fileError(err, "write the header of %s", f.path)
	}
	mem, err := mapShared(f.f, size)
	if err != nil {
		return fileError(err, "map %s", f.path)
	}
	f.mem = mem
	return nil
}

// Path returns the file's path: its final one once sealed.
func (f *File) Path() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.path
}

// Slot returns the memory of slot i's bytes in the file, nil for a slot
// that is not in it. It is writable until Seal.
func (f *File) Slot(i int) []byte { return f.slots[i] }

// Writer returns a writer of slot i's bytes, at offsets from the slot's
// start, through the file rather than its mapping (core.FetchItem.File:
// a download writes there). Its errors are those of the file system, as
// Create's; nil for a slot not in the file.
func (f *File) Writer(i int) io.WriterAt {
	if f.offsets[i] < 0 {
		return nil
	}
	return slotWriter{f, io.NewOffsetWriter(f.f, f.offsets[i]), f.offsets[i], int64(len(f.slots[i]))}
}

// slotWriter writes one slot of a File, and only within it.
type slotWriter struct {
	f    *File
	w    *io.OffsetWriter
	base int64 // the slot's offset in the file
	n    int64
}

func (w slotWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > w.n || int64(len(p)) > w.n-off {
		return 0, errorf(core.KindInvalid, nil, "write of %d bytes at %d to a slot of %d", len(p), off, w.n)
	}
	n, err := w.w.WriteAt(p, off)
	if err != nil {
		return n, fileError(err, "write %s", w.f.path)
	}
	startWriteback(w.f.f, w.base+off, int64(n))
	return n, nil
}

// Offset returns where slot i's bytes begin in the file, -1 for a slot
// that is not in it.
func (f *File) Offset(i int) int64 { return f.offsets[i] }

// Keep makes Close leave the file.
func (f *File) Keep() {
	f.mu.Lock()
	f.keep = true
	f.mu.Unlock()
}

// Seal declares the file complete: its mapping becomes read-only, and a
// file made for Options.Path takes that name.
func (f *File) Seal() error {
	f.stopTrim()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errorf(core.KindInvalid, nil, "Seal of a closed file")
	}
	if f.sealed {
		return nil
	}
	if err := protectReadOnly(f.mem); err != nil {
		return fileError(err, "seal %s", f.path)
	}
	if f.mode != 0 {
		if err := f.f.Chmod(f.mode); err != nil {
			return fileError(err, "seal %s", f.path)
		}
	}
	if f.final != "" {
		if err := os.Rename(f.path, f.final); err != nil {
			return fileError(err, "rename %s to %s", f.path, f.final)
		}
		f.path = f.final
	}
	f.sealed = true
	return nil
}

// Close unmaps the file and removes it, unless it is kept and sealed: a
// file that was never completed is always removed. Arrays that view it
// must not be used afterwards. Close is idempotent.
func (f *File) Close() error {
	f.stopTrim()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	return f.release(!(f.keep && f.sealed))
}

// abort undoes a Create that failed half way.
func (f *File) abort() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.release(true)
}

func (f *File) release(remove bool) error {
	var errs []error
	if f.mem != nil {
		errs = append(errs, unmap(f.mem))
		f.mem = nil
	}
	errs = append(errs, f.f.Close())
	if remove {
		if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fileError(err, "close %s", f.path)
	}
	return nil
}

func (f *File) stopTrim() {
	if f.trimStop == nil {
		return
	}
	select {
	case <-f.trimStop:
	default:
		close(f.trimStop)
	}
	<-f.trimDone
}

// FileError is the cause of an offload error about the file system: a
// full disk, a quota or a file-size limit (those are KindLimit), a
// directory that does not exist or cannot be written (KindInvalid). Err
// is the system's error, so errors.Is(err, syscall.ENOSPC) and
// errors.Is(err, fs.ErrPermission) hold.
type FileError struct {
	Path string // the file or directory
	Err  error
}

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

func fileError(err error, format string, args ...any) error {
	k := core.KindInvalid
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG) {
		k = core.KindLimit
	}
	fe := &FileError{Err: err}
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		fe.Path, fe.Err = pe.Path, pe.Err
	} else if le, ok := errors.AsType[*os.LinkError](err); ok {
		fe.Path, fe.Err = le.New, le.Err
	}
	return errorf(k, fe, format, args...)
}

func errorf(k core.Kind, err error, format string, args ...any) error {
	return core.NewError(k, err, "offload: "+format, args...)
}
