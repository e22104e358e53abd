package core

import (
	"math/big"
	"reflect"
	"strconv"
	"unsafe"
)

// Normalize returns the value-model form of v, one level deep: the Go
// types Encode accepts beyond the value model (see the package
// documentation) become what they stand for, and values of the model come
// back as they are.
//
//   - A slice of a fixed-width element type (bool, int8 … int64, uint16 …
//     uint64, Float16, BFloat16, float32, float64, complex64, complex128,
//     Float8E4M3FN, Float8E5M2) becomes a 1-D *Array viewing the slice (no
//     copy); []int and []uint become int64 and uint64 arrays. []byte stays
//     a byte string.
//   - Any other slice becomes a []any of its elements.
//   - A map with string keys becomes a map[string]any; a map whose keys
//     are integers or bools, a Map.
//   - A value of a named type whose underlying type is a bool, number or
//     string becomes that plain value, and a named slice or map type is
//     read as its underlying type.
//
// The elements of a slice or map are not converted: Encode converts each
// as it reaches it. Structs, pointers, Go arrays and other kinds are
// errors (KindInvalid) that say what to convert them to. Encode consults
// the Registry before Normalize, so a registered type encodes as a typed
// object. Normalize is for code that walks values before encoding them
// (the wasm host does); Encode calls it itself.
func Normalize(v any) (any, error) {
	switch v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64,
		*big.Int, Float16, float32, float64, string, []byte, *Array, *LazyRef, *Extern,
		SlotIndex, []any, map[string]any, Map, map[any]any, Object:
		return v, nil
	}
	switch v.(type) {
	case BFloat16, Float8E4M3FN, Float8E5M2, complex64, complex128:
		// Numbers CBOR has no scalar for: their named integer kinds
		// must not turn them into integers below.
		return nil, errorf(KindInvalid, "cannot encode a %s scalar: CBOR has no such number; send it as a 0-d array (ArrayOf([]int{}, elems))", dtypeOfScalar(v))
	}
	if a, ok, err := typedSliceArray(v); ok {
		return a, err
	}
	return normalizeReflect(reflect.ValueOf(v))
}

// dtypeOfScalar names the dtype of a scalar of an array element type.
func dtypeOfScalar(v any) DType {
	switch v.(type) {
	case BFloat16:
		return DTypeBFloat16
	case Float8E4M3FN:
		return DTypeFloat8E4M3FN
	case Float8E5M2:
		return DTypeFloat8E5M2
	case complex64:
		return DTypeComplex64
	}
	return DTypeComplex128
}

// typedSliceArray returns the 1-D array that views a typed slice.
func typedSliceArray(v any) (*Array, bool, error) {
	var a *Array
	var err error
	switch s := v.(type) {
	case []bool:
		a, err = ArrayOf(nil, s)
	case []int8:
		a, err = ArrayOf(nil, s)
	case []int16:
		a, err = ArrayOf(nil, s)
	case []int32:
		a, err = ArrayOf(nil, s)
	case []int64:
		a, err = ArrayOf(nil, s)
	case []uint16:
		a, err = ArrayOf(nil, s)
	case []uint32:
		a, err = ArrayOf(nil, s)
	case []uint64:
		a, err = ArrayOf(nil, s)
	case []Float16:
		a, err = ArrayOf(nil, s)
	case []BFloat16:
		a, err = ArrayOf(nil, s)
	case []float32:
		a, err = ArrayOf(nil, s)
	case []float64:
		a, err = ArrayOf(nil, s)
	case []complex64:
		a, err = ArrayOf(nil, s)
	case []complex128:
		a, err = ArrayOf(nil, s)
	case []Float8E4M3FN:
		a, err = ArrayOf(nil, s)
	case []Float8E5M2:
		a, err = ArrayOf(nil, s)
	case []int:
		a, err = ArrayOf(nil, platformInts[int, int64](s))
	case []uint:
		a, err = ArrayOf(nil, platformInts[uint, uint64](s))
	default:
		return nil, false, nil
	}
	return a, true, err
}

// platformInts returns s as 64-bit integers: a view where int is 64 bits
// wide, a copy where it is 32.
func platformInts[I int | uint, W int64 | uint64](s []I) []W {
	if strconv.IntSize == 64 {
		return unsafe.Slice((*W)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
	}
	w := make([]W, len(s))
	for i, x := range s {
		w[i] = W(x)
	}
	return w
}

// normalizeReflect converts by kind what the type switches did not know.
func normalizeReflect(rv reflect.Value) (any, error) {
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rv.Uint(), nil
	case reflect.Float32:
		return float32(rv.Float()), nil
	case reflect.Float64:
		return rv.Float(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return rv.Bytes(), nil
		}
		// A named slice of a fixed-width element: the same view.
		if a, ok, err := typedSliceArray(rv.Convert(reflect.SliceOf(rv.Type().Elem())).Interface()); ok {
			return a, err
		}
		list := make([]any, rv.Len())
		for i := range list {
			list[i] = rv.Index(i).Interface()
		}
		return list, nil
	case reflect.Map:
		return normalizeMap(rv)
	}
	return nil, errorf(KindInvalid, "cannot encode %s", notInModel(rv))
}

func normalizeMap(rv reflect.Value) (any, error) {
	if rv.Type().Key().Kind() == reflect.String {
		m := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			m[it.Key().String()] = it.Value().Interface()
		}
		return m, nil
	}
	pairs := make(Map, 0, rv.Len())
	for it := rv.MapRange(); it.Next(); {
		k, err := Normalize(it.Key().Interface())
		if err != nil {
			return nil, errorf(KindInvalid, "map key is %s, not an integer, text, byte string, boolean or null", describe(it.Key().Interface()))
		}
		pairs = append(pairs, Pair{k, it.Value().Interface()})
	}
	return pairs, nil
}

// notInModel says what v is and what to convert it to.
func notInModel(rv reflect.Value) string {
	t := rv.Type()
	switch t.Kind() {
	case reflect.Struct:
		return "a Go struct (" + t.String() + "): structs are not in the value model; convert it to map[string]any, or register its type (Registry)"
	case reflect.Pointer:
		if t.Elem().Kind() == reflect.Struct {
			return "a Go pointer (" + t.String() + "): structs are not in the value model; convert the struct to map[string]any, or register its type (Registry)"
		}
		return "a Go pointer (" + t.String() + "): pass the value it points to"
	case reflect.Array:
		return "a Go array (" + t.String() + "): convert it to a slice"
	}
	return "a Go " + t.String() + ": not in the value model"
}

// describe names the kind of value v is in CBOR's terms where it is in the
// value model, and as a Go type where it is not, never as the Go type a
// decoded item became: Python and command-line users read these errors
// too (a map key the format refuses, decoded or encoded).
func describe(v any) string {
	switch v.(type) {
	case float32, float64, Float16:
		return "a float"
	case []any:
		return "a list"
	case map[string]any, Map, map[any]any:
		return "a map"
	case *Array, SlotIndex:
		return "an array"
	case *LazyRef, *Extern:
		return "a reference"
	case Object:
		return "a typed object"
	}
	if v == nil {
		return "null"
	}
	t := reflect.TypeOf(v)
	switch t.Kind() {
	case reflect.Struct:
		return "a Go struct (" + t.String() + ")"
	case reflect.Pointer:
		return "a Go pointer (" + t.String() + ")"
	case reflect.Array:
		return "a Go array (" + t.String() + ")"
	}
	return "a Go " + t.String()
}
