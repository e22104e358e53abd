package wasm

// The guest gives core's answers where a probe found it did not: the same
// value, or an error of the same kind and offset, and no side effect core
// would not have.

import (
	"math/big"
	"testing"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
)

// TestRefuseUnknownBeforeDownload: with UnknownTypes set to refuse, a
// message holding an unregistered typed object and references is refused
// while planning, as core does: nothing is downloaded and no receipt
// reaches the source, whose transaction stays open with no receiver.
func TestRefuseUnknownBeforeDownload(t *testing.T) {
	rt := newRuntime(t, Options{})
	src, dst := quietHost(t), quietHost(t)
	enc, err := src.EncMode(core.EncOptions{ByRef: true, RefThreshold: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := core.NewArray(core.DTypeUint8, []int{1 << 16}, core.RowMajor, make([]byte, 1<<16))
	m, err := enc.Encode(map[string]any{"w": w, "cfg": core.Object{Name: "example.Config", Data: int64(1)}})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := src.Publish(m.Batch(), core.PublishOptions{Receivers: 1})
	if err != nil {
		t.Fatal(err)
	}
	o := core.DecOptions{Fetcher: dst.Client(), UnknownTypes: core.UnknownAsError}
	native, _ := o.DecMode()
	guest, _ := rt.DecMode(o)
	_, nerr := native.Decode(m.Bytes())
	_, gerr := guest.Decode(m.Bytes())
	sameError(t, "unregistered object", gerr, nerr)
	wantKind(t, "unregistered object", gerr, core.KindUnregistered)
	if state, rs := tx.Status(); state != core.StateOpen || len(rs) != 0 {
		t.Fatalf("the source's transaction is %v with receivers %+v: the refusal came after a download", state, rs)
	}
}

// sameError fails the test unless guest and native are errors of the
// same kind and offset.
func sameError(t *testing.T, what string, guest, native error) {
	t.Helper()
	if native == nil || guest == nil || core.KindOf(guest) != core.KindOf(native) || abi.OffsetOf(guest) != abi.OffsetOf(native) {
		t.Errorf("%s: guest %v (kind %v, offset %d); core %v (kind %v, offset %d)", what,
			guest, core.KindOf(guest), abi.OffsetOf(guest), native, core.KindOf(native), abi.OffsetOf(native))
	}
}

// TestRefsWithoutFetcher: a message with references and no Fetcher is
// core's error, at the ref node's offset.
func TestRefsWithoutFetcher(t *testing.T) {
	rt := newRuntime(t, Options{})
	enc, _ := core.EncOptions{ByRef: true, RefThreshold: 16, Source: "http://127.0.0.1:1"}.EncMode()
	w := arrayOf(t, core.DTypeFloat64, core.RowMajor)
	msg, err := enc.Marshal([]any{"padding", w})
	if err != nil {
		t.Fatal(err)
	}
	native, _ := core.DecOptions{}.DecMode()
	guest, _ := rt.DecMode(core.DecOptions{})
	_, nerr := native.Decode(msg)
	_, gerr := guest.Decode(msg)
	sameError(t, "references without a Fetcher", gerr, nerr)
}

// TestEncodeAnswers: values whose encoding the probe found to differ.
func TestEncodeAnswers(t *testing.T) {
	rt := newRuntime(t, Options{})
	large := arrayOf(t, core.DTypeFloat64, core.RowMajor)
	dims65 := &core.Array{DType: core.DTypeUint8, Shape: make([]int, 65), Data: []byte{}}
	deep := func(leaf any, depth int) any {
		v := leaf
		for range depth {
			v = []any{v}
		}
		return v
	}
	for _, c := range []struct {
		name string
		o    core.EncOptions
		v    any
	}{
		{"small big.Int at MaxDepth", core.EncOptions{MaxDepth: 8}, deep(big.NewInt(5), 8)},
		{"small big.Int within MaxDepth", core.EncOptions{MaxDepth: 8}, deep(big.NewInt(5), 7)},
		{"array of 65 dimensions", core.EncOptions{}, dims65},
		{"array of 65 dimensions by reference", core.EncOptions{ByRef: true, RefThreshold: 1, Source: "http://127.0.0.1:1"}, dims65},
		{"map[any]any holding a large array", core.EncOptions{ByRef: true, RefThreshold: 16, Source: "http://127.0.0.1:1"},
			map[any]any{int64(1): large, "b": []any{large}}},
	} {
		native, _ := c.o.EncMode()
		guest, _ := rt.EncMode(c.o)
		nm, nerr := native.Encode(c.v)
		gm, gerr := guest.Encode(c.v)
		switch {
		case nerr != nil:
			sameError(t, c.name, gerr, nerr)
		case gerr != nil:
			t.Errorf("%s: guest %v, core encodes", c.name, gerr)
		case string(gm.Bytes()) != string(nm.Bytes()) && !c.o.ByRef:
			t.Errorf("%s: guest %x, core %x", c.name, gm.Bytes(), nm.Bytes())
		case (gm.Batch() == nil) != (nm.Batch() == nil):
			t.Errorf("%s: guest batch %v, core's %v", c.name, gm.Batch(), nm.Batch())
		}
	}
}
