package core

import (
	"github.com/viacodec/viacodec/core/internal/fp"
)

// The scalar types of the value model that Go lacks, and its maps and
// typed objects. The value model itself: see the package documentation.

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
