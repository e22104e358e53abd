package core

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

type point struct{ X, Y int64 }

func pointRegistry(t testing.TB) *Registry {
	r := NewRegistry()
	err := Register(r, "test.Point",
		func(p point) (any, error) { return []any{p.X, p.Y}, nil },
		func(data any) (point, error) {
			l, ok := data.([]any)
			if !ok || len(l) != 2 {
				return point{}, fmt.Errorf("want [x, y], got %T", data)
			}
			x, ok1 := l[0].(int64)
			y, ok2 := l[1].(int64)
			if !ok1 || !ok2 {
				return point{}, fmt.Errorf("coordinates must be integers")
			}
			return point{x, y}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegisteredType(t *testing.T) {
	r := pointRegistry(t)
	em, _ := EncOptions{Registry: r}.EncMode()
	dm, _ := DecOptions{Registry: r}.DecMode()
	data, err := em.Marshal(map[string]any{"p": point{1, -2}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := dm.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.(map[string]any)["p"]; got != (point{1, -2}) {
		t.Fatalf("got %#v", got)
	}

	// Without the registry: a generic Object that re-encodes byte for byte.
	generic, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Object{Name: "test.Point", Data: []any{int64(1), int64(-2)}}
	if got := generic.(map[string]any)["p"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
	again, _ := Marshal(generic)
	if string(again) != string(data) {
		t.Fatalf("generic object re-encoded differently")
	}

	// Or an error, when the options say so.
	strict, _ := DecOptions{UnknownTypes: UnknownAsError}.DecMode()
	if _, err := strict.Decode(data); !errors.Is(err, ErrUnregistered) {
		t.Fatalf("got %v, want ErrUnregistered", err)
	}

	// Data that recompose rejects is a mismatch, with the cause kept.
	bad, _ := Marshal(Object{Name: "test.Point", Data: "nope"})
	if _, err := dm.Decode(bad); !errors.Is(err, ErrMismatch) {
		t.Fatalf("got %v, want ErrMismatch", err)
	}
}

func TestRegisterErrors(t *testing.T) {
	r := pointRegistry(t)
	dec := func(p point) (any, error) { return nil, nil }
	rec := func(any) (point, error) { return point{}, nil }
	if err := Register(r, "test.Point", func(int) (any, error) { return nil, nil }, func(any) (int, error) { return 0, nil }); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate name: %v", err)
	}
	if err := Register(r, "other", dec, rec); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate type: %v", err)
	}
	if err := Register[point](r, "", dec, rec); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty name: %v", err)
	}
	if err := Register[point](nil, "x", dec, rec); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil registry: %v", err)
	}
	if err := Register[error](r, "err", func(error) (any, error) { return nil, nil }, func(any) (error, error) { return nil, nil }); !errors.Is(err, ErrInvalid) {
		t.Errorf("interface type: %v", err)
	}
	// A decompose error fails the encode.
	r2 := NewRegistry()
	_ = Register(r2, "fails", func(point) (any, error) { return nil, errors.New("boom") }, rec)
	em, _ := EncOptions{Registry: r2}.EncMode()
	if _, err := em.Marshal(point{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("decompose error: %v", err)
	}
}

func TestZeroCopyDecode(t *testing.T) {
	a := mustArray(t, DTypeInt32, []int{4}, RowMajor, seq(16))
	data, _ := Marshal([]any{a, seq(2000)})
	zc, _ := DecOptions{ZeroCopy: true}.DecMode()
	v, err := zc.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	got := v.([]any)[0].(*Array)
	b := v.([]any)[1].([]byte)
	within := func(p *byte) bool {
		return len(data) > 0 && uintptrOf(p) >= uintptrOf(&data[0]) && uintptrOf(p) < uintptrOf(&data[0])+uintptr(len(data))
	}
	if !within(&got.Data[0]) || !within(&b[0]) {
		t.Fatal("zero-copy decode copied the data")
	}
	// Big-endian input is converted even in zero-copy mode.
	be := envelopeHex(t, "d842 44 00000001") // uint32 big-endian [1]
	v, err = zc.Decode(be)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := Elements[uint32](v.(*Array)); u[0] != 1 {
		t.Fatalf("got %v", u)
	}
}

func TestElements(t *testing.T) {
	a, err := ArrayOf([]int{2}, []complex64{1 + 2i, 3 - 4i})
	if err != nil {
		t.Fatal(err)
	}
	if a.DType != DTypeComplex64 || len(a.Data) != 16 {
		t.Fatalf("got %s %d bytes", a.DType, len(a.Data))
	}
	c, err := Elements[complex64](a)
	if err != nil || c[1] != 3-4i {
		t.Fatalf("got %v %v", c, err)
	}
	if &c[0] != (*complex64)(unsafePointer(a.Data)) {
		t.Fatal("aligned access copied")
	}
	// Misaligned data is copied, not read unaligned.
	buf := make([]byte, 17)
	copy(buf[1:], a.Data)
	m := mustArray(t, DTypeComplex64, []int{2}, RowMajor, buf[1:])
	c2, err := Elements[complex64](m)
	if err != nil || c2[1] != 3-4i {
		t.Fatalf("misaligned: %v %v", c2, err)
	}
	if _, err := Elements[float32](a); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong element type: %v", err)
	}
	if _, err := ArrayOf([]int{3}, []float32{1, 2}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong shape: %v", err)
	}
}
