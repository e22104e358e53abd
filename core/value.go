package core

import (
	"github.com/viacodec/viacodec/core/internal/fp"
)

// The value model. Encode accepts, and Decode returns, these Go values:
//
//	nil                              CBOR null
//	bool                             CBOR false / true
//	int, int8 … int64                CBOR integer (decodes as int64)
//	uint, uint8 … uint64             CBOR integer (decodes as int64, or uint64 above MaxInt64)
//	*big.Int                         CBOR integer, or bignum (tags 2/3) beyond 64 bits
//	Float16, float32, float64        CBOR float of that width
//	string                           CBOR text string (valid UTF-8)
//	[]byte                           CBOR byte string
//	[]any                            CBOR array
//	map[string]any                   CBOR map with text keys
//	Map                              CBOR map with keys of any scalar kind
//	*Array                           RFC 8746 array (or a ref node, when encoded by reference)
//	Object                           typed object whose name is not registered
//	a registered type                typed object (see Registry)
//	*LazyRef                         ref node re-emitted as it came (pass-through)
//	*Extern                          ref node of an array held elsewhere (encode by reference only)

// Float16 is an IEEE 754 half-precision number, held as its bits.
type Float16 uint16

// Float16From returns the half-precision number nearest to f (ties to even).
func Float16From(f float64) Float16 { return Float16(fp.F64ToF16(f)) }

// Float64 returns h exactly as a float64.
func (h Float16) Float64() float64 { return fp.F16ToF64(uint16(h)) }

// BFloat16 is a bfloat16 number, held as its bits.
type BFloat16 uint16

// BFloat16From returns the bfloat16 number nearest to f (ties to even).
func BFloat16From(f float64) BFloat16 { return BFloat16(fp.F64ToBF16(f)) }

// Float64 returns b exactly as a float64.
func (b BFloat16) Float64() float64 { return float64(fp.BF16ToF32(uint16(b))) }

// Float8E4M3FN is an OCP float8 e4m3fn number (no infinities), held as its bits.
type Float8E4M3FN uint8

// Float64 returns f exactly as a float64.
func (f Float8E4M3FN) Float64() float64 { return float64(fp.E4M3ToF32(uint8(f))) }

// Float8E5M2 is an OCP float8 e5m2 number, held as its bits.
type Float8E5M2 uint8

// Float64 returns f exactly as a float64.
func (f Float8E5M2) Float64() float64 { return float64(fp.E5M2ToF32(uint8(f))) }

// Pair is one entry of a Map.
type Pair struct {
	Key   any
	Value any
}

// Map is a CBOR map whose keys need not be strings: integers, byte strings,
// bools, floats, strings and nil. Decode returns a Map when any key is not a
// text string (map[string]any otherwise), with the pairs in message order.
// Encode writes the pairs sorted by their encoded keys, and rejects two
// pairs whose keys encode the same.
type Map []Pair

// Object is a typed object whose name the decoder's registry does not know.
// Encoding it writes the same typed object again, so a relay can forward
// types it cannot build.
type Object struct {
	Name string
	Data any
}
