//go:build wasip1

package main

import (
	"unsafe"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
	"github.com/viacodec/viacodec/wasm/internal/layout"
)

// Flags of vc_decode.
const (
	DecodePassThrough   = 1 << iota // refs stay lazy refs in the skeleton
	DecodeCanFetch                  // refs become slots the host downloads
	DecodeKeep                      // keep a decode handle for vc_decode_fill
	DecodeRefuseUnknown             // refuse typed objects while planning (core.UnknownAsError)
)

var (
	// pinned holds every buffer the host may hold, by address.
	pinned = map[uint32][]byte{}
	// lastError is the layout of the last failure, kept until the next.
	lastError []byte
	// version is core.Version as bytes the host reads.
	version = []byte(core.Version)
	// handles holds the kept decodes.
	handles = abi.NewTable()

	// spare is the last large buffer freed, for the next vc_alloc: a
	// message's buffer serves the next message without the guest zeroing
	// (and collecting) tens of MiB each time. A vc_alloc that cannot use
	// it lets it go.
	spare []byte
)

// spareMin is the smallest buffer kept as spare.
const spareMin = 1 << 20

// addr returns the guest address of b's first byte.
func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// pin keeps b (at least one byte of capacity, so its address is its own)
// until vc_free and returns it packed.
func pin(b []byte) uint64 {
	if cap(b) == 0 {
		b = make([]byte, 0, 1)
	}
	p := addr(b[:1])
	pinned[p] = b
	return layout.PackResult(p, uint32(len(b)))
}

// view returns n bytes of the pinned buffer at ptr.
func view(ptr, n uint32, what string) ([]byte, error) {
	b, ok := pinned[ptr]
	if !ok {
		return nil, abi.Errorf(core.KindInvalid, "%s at %#x is no buffer of vc_alloc", what, ptr)
	}
	if uint64(n) > uint64(len(b)) {
		return nil, abi.Errorf(core.KindInvalid, "%s of %d bytes overruns its buffer of %d", what, n, len(b))
	}
	return b[:n:n], nil
}

// status records err for vc_error_text and returns its kind, 0 for nil.
func status(err error) core.Kind {
	if err == nil {
		return core.KindNone
	}
	lastError = layout.AppendError(lastError[:0], err)
	return abi.KindOf(err)
}

// result packs b, or the status of err.
func result(b []byte, err error) uint64 {
	if err != nil {
		return layout.PackStatus(status(err))
	}
	return pin(b)
}

//go:wasmexport vc_layout_version
func vcLayoutVersion() int32 { return layout.LayoutVersion }

//go:wasmexport vc_version
func vcVersion() uint64 { return layout.PackResult(addr(version), uint32(len(version))) }

//go:wasmexport vc_error_text
func vcErrorText() uint64 {
	if len(lastError) == 0 {
		lastError = layout.AppendError(lastError, abi.Errorf(core.KindInvalid, "no error"))
	}
	return layout.PackResult(addr(lastError), uint32(len(lastError)))
}

// vc_alloc's buffer holds undefined bytes: the host writes all of it.
//
//go:wasmexport vc_alloc
func vcAlloc(n uint32) uint32 {
	var b []byte
	if s := spare; s != nil && cap(s) >= int(n) && cap(s)/2 <= int(n) {
		b = s[:n]
	} else {
		b = make([]byte, n)
	}
	spare = nil
	ptr, _, _ := layout.UnpackResult(pin(b))
	return ptr
}

//go:wasmexport vc_free
func vcFree(ptr uint32) int32 {
	b, ok := pinned[ptr]
	if !ok {
		return int32(status(abi.Errorf(core.KindInvalid, "vc_free: %#x is no pinned buffer", ptr)))
	}
	delete(pinned, ptr)
	if cap(b) >= spareMin {
		spare = b
	}
	return 0
}

//go:wasmexport vc_encode
func vcEncode(parcel, n uint32, maxDepth int64) uint64 {
	return result(encode(parcel, n, maxDepth))
}

func encode(parcel, n uint32, maxDepth int64) ([]byte, error) {
	buf, err := view(parcel, n, "parcel")
	if err != nil {
		return nil, err
	}
	skel, slots, err := layout.ReadParcel(buf)
	if err != nil {
		return nil, err
	}
	mode, err := abi.EncOptions{MaxDepth: maxDepth}.EncMode()
	if err != nil {
		return nil, err
	}
	m, err := abi.Encode(skel, slots, mode)
	if err != nil {
		return nil, err
	}
	return m.AppendTo(make([]byte, 0, m.Len())), nil
}

// hostInterrupted is the host's answer to whether the call in progress
// is to stop.
//
//go:wasmimport viacodec interrupted
func hostInterrupted() uint32

func interrupted() bool { return hostInterrupted() != 0 }

// decoded is a kept decode: the message buffer it views stays pinned
// with it.
type decoded struct {
	d   *abi.Decoded
	msg []byte
}

//go:wasmexport vc_decode
func vcDecode(msg, n uint32, maxDepth, maxElements, maxByteLen, maxMessageSize, maxArrayBytes, bytesSlotMin, arraySlotMin int64, flags uint32) uint64 {
	return result(decode(msg, n, abi.DecOptions{
		MaxDepth: maxDepth, MaxElements: maxElements, MaxByteLen: maxByteLen,
		MaxMessageSize: maxMessageSize, MaxArrayBytes: maxArrayBytes, BytesSlotMin: bytesSlotMin, ArraySlotMin: arraySlotMin,
		PassThrough: flags&DecodePassThrough != 0, RefuseUnknown: flags&DecodeRefuseUnknown != 0,
		Interrupted: interrupted,
	}, flags))
}

func decode(ptr, n uint32, o abi.DecOptions, flags uint32) ([]byte, error) {
	msg, err := view(ptr, n, "message")
	if err != nil {
		return nil, err
	}
	d, err := abi.Decode(msg, o, flags&DecodeCanFetch != 0, 0)
	if err != nil {
		return nil, err
	}
	var h int64
	if flags&DecodeKeep != 0 {
		h = handles.Add(&decoded{d: d, msg: msg})
	}
	return layout.AppendPlan(nil, d, msg, h), nil
}

//go:wasmexport vc_decode_fill
func vcDecodeFill(h int64, parcel, n uint32) int32 {
	return int32(status(fill(h, parcel, n)))
}

func fill(h int64, parcel, n uint32) error {
	d, done, err := abi.Use[*decoded](handles, h, "a decode handle")
	if err != nil {
		return err
	}
	defer done()
	buf, err := view(parcel, n, "parcel")
	if err != nil {
		return err
	}
	_, dsts, err := layout.ReadParcel(buf)
	if err != nil {
		return err
	}
	return abi.Fill(d.d, dsts)
}

//go:wasmexport vc_release
func vcRelease(h int64) int32 { return int32(status(handles.Release(h))) }
