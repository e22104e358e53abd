package fp

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// ---------------------------------------------------------------------------
// Helpers.

func b32(f float32) uint32 { return math.Float32bits(f) }
func b64(f float64) uint64 { return math.Float64bits(f) }
func f32(b uint32) float32 { return math.Float32frombits(b) }
func f64(b uint64) float64 { return math.Float64frombits(b) }

var (
	negZero32 = f32(0x80000000)
	negZero64 = f64(0x8000000000000000)
	inf32     = float32(math.Inf(1))
)

// ---------------------------------------------------------------------------
// Hex vectors.

func TestF16ToF32Vectors(t *testing.T) {
	tests := []struct {
		in   uint16
		want uint32 // float32 bits
	}{
		{0x0000, 0x00000000},       // +0
		{0x8000, 0x80000000},       // -0
		{0x0001, b32(0x1p-24)},     // smallest subnormal
		{0x8001, b32(-0x1p-24)},    // negative smallest subnormal
		{0x0002, b32(0x1p-23)},     // subnormal
		{0x0155, b32(0x155p-24)},   // subnormal with several bits
		{0x03ff, b32(0x3ffp-24)},   // largest subnormal
		{0x03ff, 0x387fc000},       // same, as bits
		{0x0400, b32(0x1p-14)},     // smallest normal
		{0x3555, 0x3eaaa000},       // 0.333251953125
		{0x3c00, b32(1)},           // 1
		{0x3c01, b32(1 + 0x1p-10)}, // 1 + ulp
		{0xc000, b32(-2)},          // -2
		{0x4248, b32(3.140625)},    // pi, rounded
		{0x7bff, b32(65504)},       // max finite
		{0xfbff, b32(-65504)},      // -max finite
		{0x7c00, b32(inf32)},       // +Inf
		{0xfc00, b32(-inf32)},      // -Inf
		{0x7e00, 0x7fc00000},       // canonical quiet NaN
		{0xfe00, 0xffc00000},       // negative quiet NaN
		{0x7c01, 0x7f802000},       // signalling NaN stays signalling
		{0xfe01, 0xffc02000},       // quiet NaN with payload
		{0x7d55, 0x7faaa000},       // signalling NaN, payload 0x155
		{0x7fff, 0x7fffe000},       // all payload bits
	}
	for _, tt := range tests {
		if got := b32(F16ToF32(tt.in)); got != tt.want {
			t.Errorf("F16ToF32(%#04x) = %#08x, want %#08x", tt.in, got, tt.want)
		}
	}
}

func TestF16ToF64Vectors(t *testing.T) {
	tests := []struct {
		in   uint16
		want uint64 // float64 bits
	}{
		{0x0000, 0},
		{0x8000, 0x8000000000000000},
		{0x0001, 0x3e70000000000000}, // 2^-24
		{0x0001, b64(0x1p-24)},
		{0x0003, b64(0x3p-24)},
		{0x03ff, 0x3f0ff80000000000}, // 1023 * 2^-24
		{0x0400, 0x3f10000000000000}, // 2^-14
		{0x3c00, 0x3ff0000000000000}, // 1
		{0xbc01, b64(-(1 + 0x1p-10))},
		{0x7bff, 0x40effc0000000000}, // 65504
		{0x7c00, 0x7ff0000000000000}, // +Inf
		{0xfc00, 0xfff0000000000000}, // -Inf
		{0x7e00, 0x7ff8000000000000}, // quiet NaN
		{0x7c01, 0x7ff0040000000000}, // signalling NaN, payload 1
		{0xfe01, 0xfff8040000000000}, // negative quiet NaN with payload
		{0x7fff, 0x7ffffc0000000000},
	}
	for _, tt := range tests {
		if got := b64(F16ToF64(tt.in)); got != tt.want {
			t.Errorf("F16ToF64(%#04x) = %#016x, want %#016x", tt.in, got, tt.want)
		}
	}
}

// f16From32Vectors are shared by F32ToF16 and (widened) F64ToF16: float32 to
// float64 is exact, so both must give the same answer.
var f16From32Vectors = []struct {
	in   float32
	want uint16
}{
	{0, 0x0000},
	{negZero32, 0x8000},
	{0x1p-24, 0x0001}, // smallest subnormal
	{-0x1p-24, 0x8001},
	{0x3ffp-24, 0x03ff}, // largest subnormal
	{0x1p-14, 0x0400},   // smallest normal
	{1, 0x3c00},
	{-2, 0xc000},
	{1.0 / 3, 0x3555},
	{math.Pi, 0x4248},
	{65504, 0x7bff}, // max finite
	{-65504, 0xfbff},
	{65519.99, 0x7bff},        // just below the overflow threshold
	{f32(0x477fefff), 0x7bff}, // largest float32 below 65520
	{65520, 0x7c00},           // tie between 65504 (odd) and 2^16: overflow
	{-65520, 0xfc00},
	{65536, 0x7c00},
	{1e10, 0x7c00},
	{math.MaxFloat32, 0x7c00},
	{-math.MaxFloat32, 0xfc00},
	{inf32, 0x7c00},
	{-inf32, 0xfc00},
	{1 + 0x1p-11, 0x3c00},           // tie, rounds down to even
	{1 + 0x3p-11, 0x3c02},           // tie, rounds up to even
	{1 + 0x1p-11 + 0x1p-23, 0x3c01}, // just above a tie
	{1 + 0x3p-11 - 0x1p-23, 0x3c01}, // just below a tie
	{-(1 + 0x3p-11), 0xbc02},
	{0x1p-14 - 0x1p-25, 0x0400}, // tie between largest subnormal (odd) and smallest normal
	{0x1p-14 - 0x1p-25 - 0x1p-38, 0x03ff},
	{0x1p-25, 0x0000}, // tie between 0 and smallest subnormal: 0
	{-0x1p-25, 0x8000},
	{0x1p-25 + 0x1p-48, 0x0001}, // just above
	{0x1.8p-25, 0x0001},         // 0.75 ulp
	{0x3p-25, 0x0002},           // subnormal tie 1.5 -> 2
	{0x5p-25, 0x0002},           // subnormal tie 2.5 -> 2
	{0x7p-25, 0x0004},           // subnormal tie 3.5 -> 4
	{0x1p-26, 0x0000},
	{f32(1), 0x0000}, // smallest float32 subnormal
	{f32(0x80000001), 0x8000},
	{f32(0x7fc00000), 0x7e00}, // quiet NaN
	{f32(0xffc00000), 0xfe00}, // negative quiet NaN
	{f32(0x7f800001), 0x7e00}, // signalling NaN with low payload: must not become Inf
	{f32(0xff800001), 0xfe00},
	{f32(0x7f802000), 0x7e01}, // signalling NaN: quieted, payload kept
	{f32(0x7fbfe000), 0x7fff},
	{f32(0x7fffffff), 0x7fff},
}

func TestF32ToF16Vectors(t *testing.T) {
	for _, tt := range f16From32Vectors {
		if got := F32ToF16(tt.in); got != tt.want {
			t.Errorf("F32ToF16(%#08x) = %#04x, want %#04x", b32(tt.in), got, tt.want)
		}
	}
}

func TestF64ToF16Vectors(t *testing.T) {
	for _, tt := range f16From32Vectors {
		if tt.in != tt.in {
			continue // NaN payloads: float32->float64 conversion is not bit-specified.
		}
		if got := F64ToF16(float64(tt.in)); got != tt.want {
			t.Errorf("F64ToF16(%v) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
	tests := []struct {
		in         float64
		want       uint16
		doubleRnds bool // float64 -> float32 -> float16 gives a different (wrong) answer
	}{
		// Double rounding. 1 + 2^-11 is exactly halfway between the
		// binary16 values 1 (0x3c00, even) and 1 + 2^-10 (0x3c01). Adding
		// 2^-40 puts the value just above the halfway point, so the correct
		// result is 0x3c01. But 2^-40 is below half an ulp of float32 at 1
		// (2^-24), so float32(x) == 1 + 2^-11, an exact tie, which then
		// rounds to the even 0x3c00.
		{1 + 0x1p-11 + 0x1p-40, 0x3c01, true},
		// Mirror image: just below the tie between 0x3c01 and 0x3c02;
		// float32 rounds up onto the tie, which then goes to even 0x3c02.
		{1 + 0x3p-11 - 0x1p-40, 0x3c01, true},
		// Same effect at the subnormal boundary: just above half the
		// smallest subnormal. float32 drops 2^-60, leaving a tie that
		// rounds to zero.
		{0x1p-25 + 0x1p-60, 0x0001, true},
		{-0x1p-25 - 0x1p-60, 0x8001, true},
		// And at overflow: one float64 ulp below 65520 is finite, but
		// float32 rounds it up to 65520, which overflows.
		{65520 - 0x1p-37, 0x7bff, true},
		{0x1p-25 + 0x1p-77, 0x0001, true}, // one float64 ulp above the tie
		{0x1p-25, 0x0000, false},
		{65520, 0x7c00, false},
		{65519.99, 0x7bff, false},
		{1e-300, 0x0000, false},
		{-1e-300, 0x8000, false},
		{math.SmallestNonzeroFloat64, 0x0000, false},
		{math.MaxFloat64, 0x7c00, false},
		{-math.MaxFloat64, 0xfc00, false},
		{negZero64, 0x8000, false},
		{math.Inf(1), 0x7c00, false},
		{math.Inf(-1), 0xfc00, false},
		{f64(0x7ff8000000000000), 0x7e00, false}, // quiet NaN
		{f64(0x7ff0000000000001), 0x7e00, false}, // signalling NaN: not Inf
		{f64(0xfff4000000000000), 0xff00, false}, // sign and top payload kept
		{f64(0x7ff7fc0000000000), 0x7fff, false},
	}
	for _, tt := range tests {
		got := F64ToF16(tt.in)
		if got != tt.want {
			t.Errorf("F64ToF16(%#016x) = %#04x, want %#04x", b64(tt.in), got, tt.want)
		}
		if via32 := F32ToF16(float32(tt.in)); tt.doubleRnds != (via32 != tt.want) {
			t.Errorf("vector %#016x: double rounding via float32 gives %#04x; doubleRnds=%v is wrong",
				b64(tt.in), via32, tt.doubleRnds)
		}
	}
}

func TestBF16ToF32Vectors(t *testing.T) {
	tests := []struct {
		in   uint16
		want uint32
	}{
		{0x0000, 0},
		{0x8000, 0x80000000},
		{0x0001, b32(0x1p-133)},  // smallest subnormal
		{0x007f, b32(0x7fp-133)}, // largest subnormal
		{0x0080, b32(0x1p-126)},  // smallest normal
		{0x3f80, b32(1)},
		{0xc000, b32(-2)},
		{0x4049, b32(3.140625)},
		{0x7f7f, b32(0x1.fep127)}, // max finite
		{0x7f80, b32(inf32)},
		{0xff80, b32(-inf32)},
		{0x7fc0, 0x7fc00000},
		{0x7f81, 0x7f810000}, // signalling NaN stays signalling
		{0xffc1, 0xffc10000},
	}
	for _, tt := range tests {
		if got := b32(BF16ToF32(tt.in)); got != tt.want {
			t.Errorf("BF16ToF32(%#04x) = %#08x, want %#08x", tt.in, got, tt.want)
		}
	}
}

func TestF32ToBF16Vectors(t *testing.T) {
	tests := []struct {
		in   uint32 // float32 bits
		want uint16
	}{
		{0x00000000, 0x0000},
		{0x80000000, 0x8000},
		{b32(1), 0x3f80},
		{b32(-2), 0xc000},
		{b32(math.Pi), 0x4049}, // 0x40490fdb
		{b32(1.0 / 3), 0x3eab}, // 0x3eaaaaab
		{0x3f808000, 0x3f80},   // 1 + 2^-8: tie, down to even
		{0x3f818000, 0x3f82},   // 1 + 3*2^-8: tie, up to even
		{0x3f808001, 0x3f81},   // just above a tie
		{0x3f817fff, 0x3f81},   // just below a tie
		{0x00000001, 0x0000},   // smallest float32 subnormal
		{0x00008000, 0x0000},   // subnormal tie to 0
		{0x00008001, 0x0001},
		{0x00018000, 0x0002}, // subnormal tie up to even
		{0x80018000, 0x8002},
		{0x007f8000, 0x0080}, // tie between largest subnormal and smallest normal
		{0x007fffff, 0x0080}, // largest float32 subnormal
		{0x7f7f0000, 0x7f7f}, // max finite bf16
		{0x7f7f7fff, 0x7f7f},
		{0x7f7f8000, 0x7f80}, // tie between max finite (odd) and 2^128: Inf
		{0x7f7fffff, 0x7f80}, // MaxFloat32 overflows
		{0xff7fffff, 0xff80},
		{0x7f800000, 0x7f80}, // +Inf
		{0xff800000, 0xff80}, // -Inf
		{0x7fc00000, 0x7fc0}, // quiet NaN
		{0xffc00000, 0xffc0},
		{0x7f800001, 0x7fc0}, // signalling NaN: must not become Inf
		{0xff80ffff, 0xffc0},
		{0x7fa00000, 0x7fe0}, // payload kept, quieted
		{0x7fffffff, 0x7fff}, // all ones: must not wrap
	}
	for _, tt := range tests {
		if got := F32ToBF16(f32(tt.in)); got != tt.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
}

func TestF64ToBF16Vectors(t *testing.T) {
	tests := []struct {
		in         float64
		want       uint16
		doubleRnds bool // float64 -> float32 -> bfloat16 gives a different answer
	}{
		{0, 0x0000, false},
		{negZero64, 0x8000, false},
		{1, 0x3f80, false},
		{math.Pi, 0x4049, false},
		{1 + 0x1p-8, 0x3f80, false},
		{1 + 0x3p-8, 0x3f82, false},
		// Just above the tie 1 + 2^-8; float32 drops the 2^-40 and then the
		// tie rounds to even.
		{1 + 0x1p-8 + 0x1p-40, 0x3f81, true},
		{1 + 0x3p-8 - 0x1p-40, 0x3f81, true},
		{0x1.fep127, 0x7f7f, false}, // max finite
		{0x1.ffp127, 0x7f80, false}, // tie above max finite: Inf
		// One float64 ulp below the overflow tie is finite; float32 rounds
		// it onto the tie first.
		{0x1.ffp127 - 0x1p75, 0x7f7f, true},
		{math.MaxFloat32, 0x7f80, false},
		{math.MaxFloat64, 0x7f80, false},
		{-math.MaxFloat64, 0xff80, false},
		{0x1p-126, 0x0080, false},
		{0x1p-126 - 0x1p-134, 0x0080, false}, // tie between 0x7f and 0x80
		{0x1p-133, 0x0001, false},
		{0x1p-134, 0x0000, false},           // tie with zero
		{0x1p-134 + 0x1p-186, 0x0001, true}, // float32 cannot hold the 2^-186
		{-0x1p-134 - 0x1p-186, 0x8001, true},
		{0x3p-134, 0x0002, false},
		{1e-300, 0x0000, false},
		{math.SmallestNonzeroFloat64, 0, false},
		{math.Inf(1), 0x7f80, false},
		{math.Inf(-1), 0xff80, false},
		{f64(0x7ff8000000000000), 0x7fc0, false},
		{f64(0xfff0000000000001), 0xffc0, false}, // signalling NaN: not Inf
		{f64(0x7ff4000000000000), 0x7fe0, false},
	}
	for _, tt := range tests {
		got := F64ToBF16(tt.in)
		if got != tt.want {
			t.Errorf("F64ToBF16(%#016x) = %#04x, want %#04x", b64(tt.in), got, tt.want)
		}
		if via32 := F32ToBF16(float32(tt.in)); tt.in == tt.in && tt.doubleRnds != (via32 != tt.want) {
			t.Errorf("vector %#016x: via float32 gives %#04x; doubleRnds=%v is wrong",
				b64(tt.in), via32, tt.doubleRnds)
		}
	}
}

func TestE4M3ToF32Vectors(t *testing.T) {
	tests := []struct {
		in   uint8
		want uint32
	}{
		{0x00, 0},
		{0x80, 0x80000000},
		{0x01, b32(0x1p-9)}, // smallest subnormal
		{0x04, b32(0x1p-7)},
		{0x06, b32(0x6p-9)},
		{0x07, b32(0x7p-9)}, // largest subnormal
		{0x08, b32(0x1p-6)}, // smallest normal
		{0x0f, b32(0xfp-9)},
		{0x38, b32(1)},
		{0x3a, b32(1.25)},
		{0xc0, b32(-2)},
		{0x77, b32(240)},
		{0x78, b32(256)},
		{0x7e, b32(448)}, // max finite
		{0xfe, b32(-448)},
		{0x7f, 0x7fc00000}, // NaN
		{0xff, 0xffc00000}, // NaN, sign kept
	}
	for _, tt := range tests {
		if got := b32(E4M3ToF32(tt.in)); got != tt.want {
			t.Errorf("E4M3ToF32(%#02x) = %#08x, want %#08x", tt.in, got, tt.want)
		}
	}
}

func TestF32ToE4M3Vectors(t *testing.T) {
	tests := []struct {
		in   float32
		want uint8
	}{
		{0, 0x00},
		{negZero32, 0x80},
		{1, 0x38},
		{-2, 0xc0},
		{0x1p-9, 0x01},
		{0x1p-10, 0x00}, // tie with zero
		{-0x1p-10, 0x80},
		{0x1p-10 + 0x1p-33, 0x01}, // just above
		{1e-3, 0x01},
		{0x3p-10, 0x02},          // subnormal tie 1.5 -> 2
		{0x7p-9, 0x07},           // largest subnormal
		{0x1p-6 - 0x1p-10, 0x08}, // tie between 0x07 (odd) and 0x08
		{0x1p-6 + 0x1p-10, 0x08}, // tie between 0x08 and 0x09
		{1.0625, 0x38},           // tie between 1 and 1.125
		{1.1875, 0x3a},           // tie between 1.125 and 1.25
		{1.0625 + 0x1p-23, 0x39}, // just above a tie
		{240, 0x77},
		{248, 0x78}, // tie between 240 (odd) and 256
		{448, 0x7e}, // max finite
		{449, 0x7e},
		{464, 0x7e}, // tie between 448 (even) and the virtual 480: stays finite
		{-464, 0xfe},
		{f32(b32(464) + 1), 0x7f}, // just above: overflow, NaN (ml_dtypes does not saturate)
		{f32(b32(-464) + 1), 0xff},
		{480, 0x7f},
		{1e6, 0x7f},
		{-1e6, 0xff},
		{math.MaxFloat32, 0x7f},
		{inf32, 0x7f}, // no Inf in e4m3fn: NaN
		{-inf32, 0xff},
		{f32(0x7fc00000), 0x7f},
		{f32(0xffc00000), 0xff},
		{f32(0x7f800001), 0x7f},
		{f32(1), 0x00}, // smallest float32 subnormal
	}
	for _, tt := range tests {
		if got := F32ToE4M3(tt.in); got != tt.want {
			t.Errorf("F32ToE4M3(%v [%#08x]) = %#02x, want %#02x", tt.in, b32(tt.in), got, tt.want)
		}
	}
}

func TestE5M2ToF32Vectors(t *testing.T) {
	tests := []struct {
		in   uint8
		want uint32
	}{
		{0x00, 0},
		{0x80, 0x80000000},
		{0x01, b32(0x1p-16)}, // smallest subnormal
		{0x03, b32(0x3p-16)}, // largest subnormal
		{0x04, b32(0x1p-14)}, // smallest normal
		{0x3c, b32(1)},
		{0x3d, b32(1.25)},
		{0xc0, b32(-2)},
		{0x7b, b32(57344)}, // max finite
		{0xfb, b32(-57344)},
		{0x7c, b32(inf32)},
		{0xfc, b32(-inf32)},
		{0x7e, 0x7fc00000}, // quiet NaN
		{0x7d, 0x7fa00000}, // signalling NaN stays signalling
		{0x7f, 0x7fe00000},
		{0xff, 0xffe00000},
	}
	for _, tt := range tests {
		if got := b32(E5M2ToF32(tt.in)); got != tt.want {
			t.Errorf("E5M2ToF32(%#02x) = %#08x, want %#08x", tt.in, got, tt.want)
		}
	}
}

func TestF32ToE5M2Vectors(t *testing.T) {
	tests := []struct {
		in   float32
		want uint8
	}{
		{0, 0x00},
		{negZero32, 0x80},
		{1, 0x3c},
		{-2, 0xc0},
		{1.125, 0x3c},           // tie between 1 and 1.25
		{1.375, 0x3e},           // tie between 1.25 and 1.5
		{1.125 + 0x1p-23, 0x3d}, // just above a tie
		{0x1p-16, 0x01},         // smallest subnormal
		{0x3p-16, 0x03},         // largest subnormal
		{0x1p-17, 0x00},         // tie with zero
		{-0x1p-17, 0x80},
		{0x1p-17 + 0x1p-40, 0x01},
		{0x3p-17, 0x02},           // subnormal tie 1.5 -> 2
		{0x1p-14 - 0x1p-17, 0x04}, // tie between largest subnormal and smallest normal
		{57344, 0x7b},             // max finite
		{61439, 0x7b},
		{f32(b32(61440) - 1), 0x7b},
		{61440, 0x7c}, // tie between max finite (odd) and 2^16: Inf
		{-61440, 0xfc},
		{1e9, 0x7c},
		{math.MaxFloat32, 0x7c},
		{inf32, 0x7c},
		{-inf32, 0xfc},
		{f32(0x7fc00000), 0x7e}, // canonical quiet NaN
		{f32(0xffc00000), 0xfe},
		{f32(0x7f800001), 0x7e}, // signalling NaN with low payload: not Inf
		{f32(0x7fa00000), 0x7f}, // quieted, top payload bit kept
		{f32(0xffe00000), 0xff},
	}
	for _, tt := range tests {
		if got := F32ToE5M2(tt.in); got != tt.want {
			t.Errorf("F32ToE5M2(%v [%#08x]) = %#02x, want %#02x", tt.in, b32(tt.in), got, tt.want)
		}
	}
}

// ---------------------------------------------------------------------------
// Reference rounding.

// format describes a narrow binary format for the reference rounder. Codes
// are magnitudes (sign bit clear); code top is the first pattern that is
// not a finite number (Inf for IEEE-like formats, NaN for e4m3fn). Its
// nominal value (what it would mean as a finite number) is the point to
// which values round when they overflow, so "rounded to top" means
// "overflowed": Inf, or NaN for e4m3fn.
type format struct {
	name    string
	mbits   int
	bias    int
	top     int
	signBit uint32
	table   []float64
}

func newFormat(name string, mbits, bias, top int, signBit uint32) *format {
	f := &format{name: name, mbits: mbits, bias: bias, top: top, signBit: signBit}
	f.table = make([]float64, top+1)
	for c := range f.table {
		f.table[c] = f.nominal(c)
	}
	return f
}

// nominal decodes magnitude code c straight from the definition, with math.Ldexp.
func (f *format) nominal(c int) float64 {
	e := c >> f.mbits
	m := c & (1<<f.mbits - 1)
	if e == 0 {
		return math.Ldexp(float64(m), 1-f.bias-f.mbits)
	}
	return math.Ldexp(float64(1<<f.mbits|m), e-f.bias-f.mbits)
}

// floor returns the largest i with table[i] <= v, for v >= 0.
func (f *format) floor(v float64) int {
	return sort.SearchFloat64s(f.table, math.Nextafter(v, math.Inf(1))) - 1
}

// pick chooses the nearest code to v, given i = f.floor(v), ties to even.
// lo and hi have at most mbits+1 significant bits, so lo+hi is exact in
// float64, and so is 2*v: the comparison below is exact.
func (f *format) pick(v float64, i int) int {
	if i >= f.top {
		return f.top
	}
	lo, hi := f.table[i], f.table[i+1]
	if v == lo {
		return i
	}
	switch d, m := 2*v, lo+hi; {
	case d < m:
		return i
	case d > m:
		return i + 1
	}
	if i&1 == 0 {
		return i
	}
	return i + 1
}

// ref rounds a finite or infinite v to the format (sign included).
func (f *format) ref(v float64) uint32 {
	var s uint32
	if math.Signbit(v) {
		s = f.signBit
		v = -v
	}
	if math.IsInf(v, 0) {
		return s | uint32(f.top)
	}
	return s | uint32(f.pick(v, f.floor(v)))
}

var (
	fmtF16  = newFormat("f16", 10, 15, 0x7c00, 0x8000)
	fmtBF16 = newFormat("bf16", 7, 127, 0x7f80, 0x8000)
	fmtE4M3 = newFormat("e4m3fn", 3, 7, 0x7f, 0x80)
	fmtE5M2 = newFormat("e5m2", 2, 15, 0x7c, 0x80)
)

// TestReferenceSelfCheck makes sure the reference itself behaves on a few
// hand-checked points, so that agreement with it means something.
func TestReferenceSelfCheck(t *testing.T) {
	checks := []struct {
		f    *format
		v    float64
		want uint32
	}{
		{fmtF16, 65504, 0x7bff},
		{fmtF16, 65520, 0x7c00},
		{fmtF16, 65519.99, 0x7bff},
		{fmtF16, 1 + 0x1p-11, 0x3c00},
		{fmtF16, 1 + 0x3p-11, 0x3c02},
		{fmtF16, 0x1p-25, 0},
		{fmtF16, -0x3p-25, 0x8002},
		{fmtE4M3, 464, 0x7e},
		{fmtE4M3, 465, 0x7f},
		{fmtE5M2, 61440, 0x7c},
		{fmtBF16, 0x1.ffp127, 0x7f80},
		{fmtBF16, math.MaxFloat64, 0x7f80},
	}
	for _, c := range checks {
		if got := c.f.ref(c.v); got != c.want {
			t.Errorf("%s reference(%v) = %#x, want %#x", c.f.name, c.v, got, c.want)
		}
	}
	if fmtF16.table[0x7bff] != 65504 || fmtE4M3.table[0x7e] != 448 || fmtE5M2.table[0x7b] != 57344 ||
		fmtBF16.table[0x7f7f] != 0x1.fep127 || fmtF16.table[1] != 0x1p-24 || fmtE4M3.table[1] != 0x1p-9 {
		t.Fatal("reference tables are wrong")
	}
}

// ---------------------------------------------------------------------------
// Exhaustive decode and round-trip checks.

func isNaN32(x uint32) bool { return x&0x7fffffff > 0x7f800000 }

func TestF16Exhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		d := F16ToF64(h)
		mag := int(h & 0x7fff)
		neg := h&0x8000 != 0
		if mag > 0x7c00 { // NaN
			if !isNaN32(b32(f)) || math.Signbit(float64(f)) != neg || d == d || math.Signbit(d) != neg {
				t.Fatalf("%#04x: decoded NaN wrongly: %#08x %#016x", h, b32(f), b64(d))
			}
			if want := uint32(h&0x8000)<<16 | 0x7f800000 | uint32(h&0x3ff)<<13; b32(f) != want {
				t.Fatalf("F16ToF32(%#04x) = %#08x, want %#08x", h, b32(f), want)
			}
			if want := uint64(h&0x8000)<<48 | 0x7ff<<52 | uint64(h&0x3ff)<<42; b64(d) != want {
				t.Fatalf("F16ToF64(%#04x) = %#016x, want %#016x", h, b64(d), want)
			}
			// A NaN comes back as a NaN of the same sign; quiet ones
			// exactly, signalling ones quieted with the payload kept.
			want := h | 0x0200
			if got := F32ToF16(f); got != want {
				t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x, want %#04x", h, got, want)
			}
			if got := F64ToF16(d); got != want {
				t.Fatalf("F64ToF16(F16ToF64(%#04x)) = %#04x, want %#04x", h, got, want)
			}
			continue
		}
		want := fmtF16.table[mag]
		if mag == 0x7c00 {
			want = math.Inf(1)
		}
		if neg {
			want = -want
		}
		if float64(f) != want || d != want || math.Signbit(d) != neg || math.Signbit(float64(f)) != neg {
			t.Fatalf("%#04x decodes to %v / %v, want %v", h, f, d, want)
		}
		if got := F32ToF16(f); got != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, got)
		}
		if got := F64ToF16(d); got != h {
			t.Fatalf("F64ToF16(F16ToF64(%#04x)) = %#04x", h, got)
		}
	}
}

func TestBF16Exhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		b := uint16(i)
		f := BF16ToF32(b)
		mag := int(b & 0x7fff)
		neg := b&0x8000 != 0
		if mag > 0x7f80 {
			if !isNaN32(b32(f)) || math.Signbit(float64(f)) != neg {
				t.Fatalf("%#04x: not decoded as NaN: %#08x", b, b32(f))
			}
			want := b | 0x40
			if got := F32ToBF16(f); got != want {
				t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x, want %#04x", b, got, want)
			}
			// Build the float64 NaN by hand: float32->float64 conversion of
			// NaNs is not bit-exact on every platform.
			d := f64(uint64(b&0x8000)<<48 | 0x7ff<<52 | uint64(b&0x7f)<<45)
			if got := F64ToBF16(d); got != want {
				t.Fatalf("F64ToBF16(%#016x) = %#04x, want %#04x", b64(d), got, want)
			}
			continue
		}
		want := fmtBF16.table[mag]
		if mag == 0x7f80 {
			want = math.Inf(1)
		}
		if neg {
			want = -want
		}
		if float64(f) != want || math.Signbit(float64(f)) != neg {
			t.Fatalf("BF16ToF32(%#04x) = %v, want %v", b, f, want)
		}
		if got := F32ToBF16(f); got != b {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x", b, got)
		}
		if got := F64ToBF16(float64(f)); got != b {
			t.Fatalf("F64ToBF16(BF16ToF32(%#04x)) = %#04x", b, got)
		}
	}
}

func TestE4M3Exhaustive(t *testing.T) {
	for i := 0; i < 256; i++ {
		b := uint8(i)
		f := E4M3ToF32(b)
		neg := b&0x80 != 0
		if b&0x7f == 0x7f {
			if want := uint32(b&0x80)<<24 | 0x7fc00000; b32(f) != want {
				t.Fatalf("E4M3ToF32(%#02x) = %#08x, want %#08x", b, b32(f), want)
			}
		} else {
			want := fmtE4M3.table[b&0x7f]
			if neg {
				want = -want
			}
			if float64(f) != want || math.Signbit(float64(f)) != neg {
				t.Fatalf("E4M3ToF32(%#02x) = %v, want %v", b, f, want)
			}
		}
		// Every pattern, NaNs included, round-trips exactly.
		if got := F32ToE4M3(f); got != b {
			t.Fatalf("F32ToE4M3(E4M3ToF32(%#02x)) = %#02x", b, got)
		}
	}
}

func TestE5M2Exhaustive(t *testing.T) {
	for i := 0; i < 256; i++ {
		b := uint8(i)
		f := E5M2ToF32(b)
		neg := b&0x80 != 0
		mag := int(b & 0x7f)
		if mag > 0x7c {
			if want := uint32(b&0x80)<<24 | 0x7f800000 | uint32(b&3)<<21; b32(f) != want {
				t.Fatalf("E5M2ToF32(%#02x) = %#08x, want %#08x", b, b32(f), want)
			}
			if got, want := F32ToE5M2(f), b|0x02; got != want {
				t.Fatalf("F32ToE5M2(E5M2ToF32(%#02x)) = %#02x, want %#02x", b, got, want)
			}
			continue
		}
		want := fmtE5M2.table[mag]
		if mag == 0x7c {
			want = math.Inf(1)
		}
		if neg {
			want = -want
		}
		if float64(f) != want || math.Signbit(float64(f)) != neg {
			t.Fatalf("E5M2ToF32(%#02x) = %v, want %v", b, f, want)
		}
		if got := F32ToE5M2(f); got != b {
			t.Fatalf("F32ToE5M2(E5M2ToF32(%#02x)) = %#02x", b, got)
		}
	}
}

// ---------------------------------------------------------------------------
// Brute-force comparison with the reference.

// nan32 gives the expected result of converting the float32 NaN with bits x.
var nan32 = map[*format]func(x uint32) uint32{
	fmtF16:  func(x uint32) uint32 { return x>>16&0x8000 | 0x7e00 | x>>13&0x3ff },
	fmtBF16: func(x uint32) uint32 { return x>>16 | 0x40 },
	fmtE4M3: func(x uint32) uint32 { return x>>24&0x80 | 0x7f },
	fmtE5M2: func(x uint32) uint32 { return x>>24&0x80 | 0x7e | x>>21&3 },
}

var conv32 = map[*format]func(float32) uint32{
	fmtF16:  func(f float32) uint32 { return uint32(F32ToF16(f)) },
	fmtBF16: func(f float32) uint32 { return uint32(F32ToBF16(f)) },
	fmtE4M3: func(f float32) uint32 { return uint32(F32ToE4M3(f)) },
	fmtE5M2: func(f float32) uint32 { return uint32(F32ToE5M2(f)) },
}

// random32 returns a float32 bit pattern that is, in turn: fully random;
// random within [2^lo, 2^hi); a midpoint between adjacent codes of f, moved by
// up to two float32 ulps; or a code of f, moved by up to two ulps.
func random32(r *rand.Rand, f *format, i, lo, hi int) uint32 {
	sign := r.Uint32() & 0x80000000
	switch i % 4 {
	case 0:
		return r.Uint32()
	case 1:
		e := uint32(lo + 127 + r.IntN(hi-lo))
		return sign | e<<23 | r.Uint32()&0x7fffff
	case 2:
		c := r.IntN(f.top)
		mid := float32((f.table[c] + f.table[c+1]) / 2) // exact
		return sign | (b32(mid) + uint32(r.IntN(5)) - 2)
	default:
		c := r.IntN(f.top)
		x := b32(float32(f.table[c])) + uint32(r.IntN(5))
		if x < 2 {
			return sign | x
		}
		return sign | (x - 2)
	}
}

func TestRandomAgainstReference32(t *testing.T) {
	n := 4_000_000
	if testing.Short() {
		n = 200_000
	}
	windows := map[*format][2]int{ // binades [2^lo, 2^hi) of case 1
		fmtF16:  {-27, 18},
		fmtBF16: {-126, 128},
		fmtE4M3: {-12, 11},
		fmtE5M2: {-19, 18},
	}
	for _, f := range []*format{fmtF16, fmtBF16, fmtE4M3, fmtE5M2} {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(1, uint64(f.top)))
			conv, nan := conv32[f], nan32[f]
			w := windows[f]
			fails := 0
			for i := range n {
				x := random32(r, f, i, w[0], w[1])
				var want uint32
				if isNaN32(x) {
					want = nan(x)
				} else {
					want = f.ref(float64(f32(x)))
				}
				if got := conv(f32(x)); got != want {
					t.Errorf("%s(%#08x [%g]) = %#x, want %#x", f.name, x, f32(x), got, want)
					if fails++; fails > 10 {
						t.FailNow()
					}
				}
			}
		})
	}
}

func TestRandomAgainstReference64(t *testing.T) {
	n := 4_000_000
	if testing.Short() {
		n = 200_000
	}
	for _, tc := range []struct {
		f      *format
		conv   func(float64) uint16
		nan    func(x uint64) uint16
		lo, hi int
	}{
		{fmtF16, F64ToF16, func(x uint64) uint16 { return uint16(x>>48)&0x8000 | 0x7e00 | uint16(x>>42)&0x3ff }, -27, 18},
		{fmtBF16, F64ToBF16, func(x uint64) uint16 { return uint16(x>>48)&0x8000 | 0x7fc0 | uint16(x>>45)&0x7f }, -136, 130},
	} {
		f := tc.f
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(2, uint64(f.top)))
			fails := 0
			for i := range n {
				sign := r.Uint64() & (1 << 63)
				var x uint64
				switch i % 4 {
				case 0:
					x = r.Uint64()
				case 1:
					e := uint64(tc.lo + 1023 + r.IntN(tc.hi-tc.lo))
					x = sign | e<<52 | r.Uint64()&(1<<52-1)
				case 2: // midpoints, the cases double rounding gets wrong
					c := r.IntN(f.top)
					x = sign | (b64((f.table[c]+f.table[c+1])/2) + uint64(r.IntN(5)) - 2)
				default:
					c := r.IntN(f.top)
					x = sign | (b64(f.table[c]) + uint64(r.IntN(5)))
				}
				d := f64(x)
				var want uint16
				if d != d {
					want = tc.nan(x)
				} else {
					want = uint16(f.ref(d))
				}
				if got := tc.conv(d); got != want {
					t.Errorf("%s(%#016x [%g]) = %#04x, want %#04x", f.name, x, d, got, want)
					if fails++; fails > 10 {
						t.FailNow()
					}
				}
			}
		})
	}
}

// sweep checks conv against the reference for every step-th positive float32
// bit pattern in [lo, hi), and the negated value for every eighth pattern. It walks upwards, so it
// keeps track of the reference interval instead of searching for it.
func sweep(t *testing.T, f *format, lo, hi, step uint64) {
	conv := conv32[f]
	i := f.floor(float64(f32(uint32(lo))))
	fails := 0
	for x := lo; x < hi; x += step {
		v := float64(f32(uint32(x)))
		for i < f.top && f.table[i+1] <= v {
			i++
		}
		want := uint32(f.pick(v, i))
		got := conv(f32(uint32(x)))
		gotNeg := want | f.signBit
		if x&7 == 0 { // the sign is handled uniformly: sample it
			gotNeg = conv(f32(uint32(x) | 0x80000000))
		}
		if got != want || gotNeg != want|f.signBit {
			t.Errorf("%s(±%#08x [%g]) = %#x, %#x; want %#x", f.name, x, v, got, gotNeg, want)
			if fails++; fails > 10 {
				t.FailNow()
			}
		}
	}
}

// binade returns the float32 bit pattern of 2^e.
func binade(e int) uint64 { return uint64(e+127) << 23 }

// TestSweep compares with the reference for every float32 near the range of
// each format (every one, unless -short) and a coarse grid over all finite
// positive float32 values.
func TestSweep(t *testing.T) {
	step := uint64(1)
	if testing.Short() {
		step = 251
	}
	cases := []struct {
		f      *format
		lo, hi uint64
		step   uint64
	}{
		// All float32 from below half the smallest subnormal to beyond
		// the overflow threshold.
		{fmtE4M3, binade(-12), binade(10), step},
		{fmtE5M2, binade(-19), binade(17), step},
		{fmtF16, binade(-26), binade(17), 7 * step}, // plus the random test
		// bf16 has the float32 exponent range: do the subnormals, the
		// top two binades, and one ordinary binade in full.
		{fmtBF16, 0, binade(-124), step},
		{fmtBF16, binade(126), binade(128), step},
		{fmtBF16, binade(0), binade(1), step},
	}
	for _, f := range []*format{fmtE4M3, fmtE5M2, fmtF16, fmtBF16} {
		cases = append(cases, struct {
			f      *format
			lo, hi uint64
			step   uint64
		}{f, 0, 0x7f800001, 4099 * step})
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%#x-%#x", c.f.name, c.lo, c.hi), func(t *testing.T) {
			t.Parallel()
			sweep(t, c.f, c.lo, c.hi, c.step)
		})
	}
}

// TestF32F64Agree checks that F32ToF16 and F64ToF16 (independent code paths)
// agree on float32 inputs across the whole binary16 range, and likewise the
// two bfloat16 conversions on a coarser grid.
func TestF32F64Agree(t *testing.T) {
	step := uint32(13)
	if testing.Short() {
		step = 997
	}
	for x := uint32(binade(-26)); x < uint32(binade(17)); x += step {
		f := f32(x)
		if a, b := F32ToF16(f), F64ToF16(float64(f)); a != b {
			t.Fatalf("%#08x: F32ToF16 = %#04x, F64ToF16 = %#04x", x, a, b)
		}
	}
	for x := uint32(0); x < 0x7f800000; x += 101 * step {
		f := f32(x)
		if a, b := F32ToBF16(f), F64ToBF16(float64(f)); a != b {
			t.Fatalf("%#08x: F32ToBF16 = %#04x, F64ToBF16 = %#04x", x, a, b)
		}
	}
}

// ---------------------------------------------------------------------------
// Allocation and benchmarks.

func TestNoAllocs(t *testing.T) {
	var sink uint32
	allocs := testing.AllocsPerRun(100, func() {
		sink += uint32(F32ToF16(1.5)) + uint32(F64ToF16(1.5)) + b32(F16ToF32(0x3c00)) +
			uint32(b64(F16ToF64(0x3c00))) + uint32(F32ToBF16(1.5)) + uint32(F64ToBF16(1.5)) +
			b32(BF16ToF32(0x3f80)) + uint32(F32ToE4M3(1.5)) + b32(E4M3ToF32(0x38)) +
			uint32(F32ToE5M2(1.5)) + b32(E5M2ToF32(0x3c))
	})
	if allocs != 0 {
		t.Errorf("conversions allocate: %v allocs per run", allocs)
	}
	_ = sink
}

var benchIn32 = [...]float32{0, 1, -2.5, 65504, 1e-6, 3.14159, -1e-3, 100000, 0x1p-20, 448, 0.1, -7}

func BenchmarkF32ToF16(b *testing.B) {
	var s uint16
	for b.Loop() {
		for _, f := range benchIn32 {
			s += F32ToF16(f)
		}
	}
	_ = s
}

func BenchmarkF64ToF16(b *testing.B) {
	var s uint16
	for b.Loop() {
		for _, f := range benchIn32 {
			s += F64ToF16(float64(f))
		}
	}
	_ = s
}

func BenchmarkF16ToF32(b *testing.B) {
	var s float32
	for b.Loop() {
		for h := uint16(0x3b00); h < 0x3b0c; h++ {
			s += F16ToF32(h)
		}
	}
	_ = s
}

func BenchmarkF32ToBF16(b *testing.B) {
	var s uint16
	for b.Loop() {
		for _, f := range benchIn32 {
			s += F32ToBF16(f)
		}
	}
	_ = s
}

func BenchmarkF32ToE4M3(b *testing.B) {
	var s uint8
	for b.Loop() {
		for _, f := range benchIn32 {
			s += F32ToE4M3(f)
		}
	}
	_ = s
}

func BenchmarkF32ToE5M2(b *testing.B) {
	var s uint8
	for b.Loop() {
		for _, f := range benchIn32 {
			s += F32ToE5M2(f)
		}
	}
	_ = s
}
