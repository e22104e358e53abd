package tensorfile

import (
	"archive/zip"
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"strings"

	"github.com/viacodec/viacodec/core"
)

// An .npz file is a zip archive with one NAME.npy member per array, stored
// (numpy.savez) or deflated (numpy.savez_compressed).

func readNPZ(data []byte) (*File, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, errorf(core.KindSyntax, "not an .npz file (%v)", err)
	}
	f := &File{}
	seen := map[string]bool{}
	for _, zf := range zr.File {
		name, ok := strings.CutSuffix(zf.Name, ".npy")
		if !ok {
			return nil, errorf(core.KindSyntax, "npz: member %q is not an .npy file", zf.Name)
		}
		if seen[name] {
			return nil, errorf(core.KindSyntax, "npz: two members named %q", zf.Name)
		}
		seen[name] = true
		if name == MetadataKey {
			return nil, errorf(core.KindInvalid, "npz: an array is named %q, the key that metadata travels under", MetadataKey)
		}
		a, err := readNPZMember(data, zf)
		if err != nil {
			return nil, within(err, "npz: member %q", zf.Name)
		}
		f.Tensors = append(f.Tensors, Tensor{Name: name, Array: a})
	}
	return f, nil
}

// readNPZMember parses one member. A stored member's array aliases data;
// a deflated one is read into memory that grows with what really
// inflates, however large its header says it is.
func readNPZMember(data []byte, zf *zip.File) (*core.Array, error) {
	if zf.Method == zip.Store {
		off, err := zf.DataOffset()
		if err != nil {
			return nil, wrap(core.KindSyntax, err, "npz")
		}
		n := zf.CompressedSize64
		if off < 0 || uint64(off) > uint64(len(data)) || n > uint64(len(data))-uint64(off) || zf.UncompressedSize64 != n {
			return nil, errorf(core.KindSyntax, "npz: member of %d bytes runs past the end of the file", n)
		}
		member := data[off : off+int64(n) : off+int64(n)]
		if crc32.ChecksumIEEE(member) != zf.CRC32 {
			return nil, errorf(core.KindSyntax, "npz: member fails its CRC-32 check")
		}
		h, hlen, err := readNPYHeader(bytes.NewReader(member))
		if err != nil {
			return nil, err
		}
		return npyArray(h, member[hlen:])
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, wrap(core.KindSyntax, err, "npz")
	}
	defer rc.Close()
	h, _, err := readNPYHeader(rc)
	if err != nil {
		return nil, err
	}
	// One byte more than the shape needs shows trailing data; reading to
	// the end makes the zip reader check the CRC.
	want := uint64(h.dtype.Size())
	for _, d := range h.shape {
		hi, lo := bits.Mul64(want, uint64(d))
		if hi != 0 || lo > 1<<62 {
			return nil, errorf(core.KindMismatch, "npy: shape %v of %s overflows", h.shape, h.dtype)
		}
		want = lo
	}
	body, err := io.ReadAll(io.LimitReader(rc, int64(want)+1))
	if err != nil {
		return nil, wrap(core.KindSyntax, err, "npz")
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, wrap(core.KindSyntax, err, "npz")
	}
	return npyArray(h, body)
}

// writeNPZ writes what numpy.savez writes: stored members NAME.npy dated
// 1980-01-01, each an .npy file with numpy's header.
func writeNPZ(w io.Writer, f *File) error {
	if f.Metadata != nil {
		return errorf(core.KindInvalid, "npz cannot carry %s (safetensors metadata)", MetadataKey)
	}
	headers := make([][]byte, len(f.Tensors))
	for i, t := range f.Tensors {
		h, ok := appendNPYHeader(nil, t.Array)
		if !ok {
			return errorf(core.KindInvalid, "npz cannot carry %s (tensor %q): numpy has no such dtype", t.Array.DType, t.Name)
		}
		if t.Name == MetadataKey {
			return errorf(core.KindInvalid, "npz: a tensor cannot be named %q", MetadataKey)
		}
		headers[i] = h
	}
	zw := zip.NewWriter(w)
	for i, t := range f.Tensors {
		h, d := headers[i], t.Array.Data
		n := uint64(len(h) + len(d))
		fh := &zip.FileHeader{
			Name:               t.Name + ".npy",
			Method:             zip.Store,
			CRC32:              crc32.Update(crc32.ChecksumIEEE(h), crc32.IEEETable, d),
			CompressedSize64:   n,
			UncompressedSize64: n,
			ModifiedDate:       1<<5 | 1, // 1980-01-01, as numpy.savez writes
		}
		mw, err := zw.CreateRaw(fh)
		if err != nil {
			return fmt.Errorf("tensorfile: npz: %w", err)
		}
		if err := writeAll(mw, h, d); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("tensorfile: npz: %w", err)
	}
	return nil
}
