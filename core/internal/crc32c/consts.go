package crc32c

import "math/bits"

// castagnoli is the polynomial in normal form, without its x^32 term.
const castagnoli = 0x1EDC6F41

// foldConst returns x^n modulo poly (normal form, without its x^32 term),
// bit reflected into the order of the reflected CRC and shifted left by
// one: the 33-bit multiplier that moves a 64-bit half of a lane forward in
// a fold.
func foldConst(poly uint32, n int) uint64 {
	r := uint64(1)
	for range n {
		r <<= 1
		if r&(1<<32) != 0 {
			r ^= 1<<32 | uint64(poly)
		}
	}
	return uint64(bits.Reverse32(uint32(r))) << 1
}
