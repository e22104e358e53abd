// Package fp converts exactly between Go floats and the narrow float formats a
// model-weight codec needs (IEEE 754 binary16, bfloat16, and the OCP fp8
// formats float8_e4m3fn and float8_e5m2 as in ml_dtypes), rounding once to
// nearest-even when narrowing and passing narrow values as raw bit patterns.
package fp

import (
	"math"
	"math/bits"
)

// roundMag rounds the magnitude of a finite float64, given as its bit pattern
// with the sign bit clear, to a binary format with mbits stored mantissa bits
// and exponent bias bias (subnormals included), to nearest with ties to even.
// It returns the exponent and mantissa fields of the result. A result that is
// too large comes out with an exponent field at or above the format's
// all-ones value; callers map that to Inf or NaN.
func roundMag(x, mbits, bias uint64) uint64 {
	e := x >> 52
	if e > 1023-bias {
		// Normal in the target format: rebias the exponent in place and
		// round away the low 52-mbits mantissa bits. A carry out of the
		// mantissa correctly increments the exponent.
		s := 52 - mbits
		x -= (1023 - bias) << 52
		return (x + (1<<(s-1) - 1) + ((x >> s) & 1)) >> s
	}
	// Subnormal (or zero) in the target format. The value is m*2^(e-1075)
	// and the target's subnormal unit is 2^(1-bias-mbits), so the result is
	// m shifted right by s, rounded. s >= 53-mbits >= 1 here.
	s := 1076 - bias - mbits - e
	if s > 53 {
		// m < 2^53, so m/2^s < 1/2: rounds to zero. This also covers
		// float64 zeros and subnormals (e == 0).
		return 0
	}
	m := x&(1<<52-1) | 1<<52
	return (m + (1<<(s-1) - 1) + ((m >> s) & 1)) >> s
}

// F16ToF32 returns the float32 equal to the IEEE 754 binary16 value h.
// NaNs keep their sign and payload (quiet bit included).
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch exp {
	case 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: man*2^-24 with the leading one at bit n-1.
		n := uint32(bits.Len32(man))
		return math.Float32frombits(sign | (n+102)<<23 | (man<<(11-n)&0x3ff)<<13)
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

// F16ToF64 returns the float64 equal to the IEEE 754 binary16 value h.
// NaNs keep their sign and payload (quiet bit included).
func F16ToF64(h uint16) float64 {
	sign := uint64(h&0x8000) << 48
	exp := uint64(h>>10) & 0x1f
	man := uint64(h & 0x3ff)
	switch exp {
	case 0:
		if man == 0 {
			return math.Float64frombits(sign)
		}
		n := uint64(bits.Len64(man))
		return math.Float64frombits(sign | (n+998)<<52 | (man<<(11-n)&0x3ff)<<42)
	case 0x1f:
		return math.Float64frombits(sign | 0x7ff<<52 | man<<42)
	}
	return math.Float64frombits(sign | (exp+1008)<<52 | man<<42)
}

// F32ToF16 rounds f to the nearest IEEE 754 binary16 value, ties to even.
// Values of magnitude 65520 or more become ±Inf. NaNs stay NaN with the
// same sign and the top payload bits, with the quiet bit set.
func F32ToF16(f float32) uint16 {
	x := math.Float32bits(f)
	sign := uint16(x>>16) & 0x8000
	x &^= 1 << 31
	switch {
	case x > 0x7f800000: // NaN
		return sign | 0x7e00 | uint16(x>>13)&0x3ff
	case x >= 0x477ff000: // >= 65520 (halfway from 65504 to 2^16), or Inf
		return sign | 0x7c00
	case x >= 0x38800000: // >= 2^-14: normal result
		return sign | uint16((x-0x38000000+0xfff+((x>>13)&1))>>13)
	case x >= 0x33000000: // >= 2^-25: subnormal result (or 2^-14 by carry)
		s := 126 - x>>23 // 14..24
		m := x&0x7fffff | 0x800000
		return sign | uint16((m+(1<<(s-1)-1)+((m>>s)&1))>>s)
	}
	return sign
}

// F64ToF16 rounds f to the nearest IEEE 754 binary16 value, ties to even,
// with a single rounding step. Values of magnitude 65520 or more become
// ±Inf. NaNs stay NaN with the same sign and the top payload bits, with the
// quiet bit set.
func F64ToF16(f float64) uint16 {
	x := math.Float64bits(f)
	sign := uint16(x>>48) & 0x8000
	x &^= 1 << 63
	if x >= 0x7ff0000000000000 {
		if x == 0x7ff0000000000000 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(x>>42)&0x3ff
	}
	r := roundMag(x, 10, 15)
	if r >= 0x7c00 {
		return sign | 0x7c00
	}
	return sign | uint16(r)
}

// BF16ToF32 returns the float32 equal to the bfloat16 value b.
func BF16ToF32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}

// F32ToBF16 rounds f to the nearest bfloat16 value, ties to even; values
// that round beyond the largest finite bfloat16 become ±Inf. NaNs stay NaN
// with the same sign and the top payload bits, with the quiet bit set.
func F32ToBF16(f float32) uint16 {
	x := math.Float32bits(f)
	if x&0x7fffffff > 0x7f800000 {
		return uint16(x>>16) | 0x40
	}
	// The rounding carry propagates into the exponent, up to Inf at most.
	return uint16((x + 0x7fff + ((x >> 16) & 1)) >> 16)
}

// F64ToBF16 rounds f to the nearest bfloat16 value, ties to even, with a
// single rounding step. NaNs stay NaN with the same sign and the top
// payload bits, with the quiet bit set.
func F64ToBF16(f float64) uint16 {
	x := math.Float64bits(f)
	sign := uint16(x>>48) & 0x8000
	x &^= 1 << 63
	if x >= 0x7ff0000000000000 {
		if x == 0x7ff0000000000000 {
			return sign | 0x7f80
		}
		return sign | 0x7fc0 | uint16(x>>45)&0x7f
	}
	r := roundMag(x, 7, 127)
	if r >= 0x7f80 {
		return sign | 0x7f80
	}
	return sign | uint16(r)
}

// E4M3ToF32 returns the float32 equal to the float8_e4m3fn value b
// (bias 7, no infinities). 0x7F and 0xFF decode to a quiet NaN of that sign.
func E4M3ToF32(b uint8) float32 {
	sign := uint32(b&0x80) << 24
	exp := uint32(b>>3) & 0xf
	man := uint32(b & 7)
	switch {
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: man*2^-9 with the leading one at bit n-1.
		n := uint32(bits.Len32(man))
		return math.Float32frombits(sign | (n+117)<<23 | (man<<(4-n)&7)<<20)
	case exp == 0xf && man == 7:
		return math.Float32frombits(sign | 0x7fc00000)
	}
	return math.Float32frombits(sign | (exp+120)<<23 | man<<20)
}

// F32ToE4M3 rounds f to the nearest float8_e4m3fn value, ties to even, as
// ml_dtypes does: magnitudes that round above 448 (that is, above 464), ±Inf
// and NaN all become NaN (0x7F, or 0xFF when negative). It does not saturate.
func F32ToE4M3(f float32) uint8 {
	x := math.Float32bits(f)
	sign := uint8(x>>24) & 0x80
	x &^= 1 << 31
	if x >= 0x7f800000 {
		return sign | 0x7f
	}
	// float32 -> float64 is exact, so this is a single rounding.
	r := roundMag(math.Float64bits(float64(math.Float32frombits(x))), 3, 7)
	if r > 0x7e {
		return sign | 0x7f
	}
	return sign | uint8(r)
}

// E5M2ToF32 returns the float32 equal to the float8_e5m2 value b (bias 15,
// IEEE-like). NaNs keep their sign and payload (quiet bit included).
func E5M2ToF32(b uint8) float32 {
	// E5M2 is binary16 with the low 8 mantissa bits dropped.
	return F16ToF32(uint16(b) << 8)
}

// F32ToE5M2 rounds f to the nearest float8_e5m2 value, ties to even; values
// of magnitude 61440 or more become ±Inf. NaNs become quiet NaNs (0x7E/0xFE
// for the canonical NaN) keeping the sign and the top payload bit.
func F32ToE5M2(f float32) uint8 {
	x := math.Float32bits(f)
	sign := uint8(x>>24) & 0x80
	x &^= 1 << 31
	if x >= 0x7f800000 {
		if x == 0x7f800000 {
			return sign | 0x7c
		}
		return sign | 0x7e | uint8(x>>21)&0x3
	}
	r := roundMag(math.Float64bits(float64(math.Float32frombits(x))), 2, 15)
	if r >= 0x7c {
		return sign | 0x7c
	}
	return sign | uint8(r)
}
