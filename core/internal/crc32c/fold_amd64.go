package crc32c

import "golang.org/x/sys/cpu"

var haveFold = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VPCLMULQDQ && cpu.X86.HasSSE42

// fold returns the CRC register (no inversions) after p from register s.
// len(p) is a multiple of 64 of at least 256.
//
//go:noescape
func fold(s uint32, p []byte) uint32

// consts are fold's multipliers, each pair for one 128-bit lane folded
// forward over a distance: the lane's low half (the earlier bytes) times
// x^(d+32), its high half times x^(d-32), modulo the polynomial, bit
// reflected and shifted left by one (foldConst). Laid out as fold loads
// them: four lanes folding 256 bytes, four folding 64, one folding 16.
var consts = func() (c [18]uint64) {
	for i := range 4 {
		c[2*i], c[2*i+1] = foldConst(castagnoli, 256*8+32), foldConst(castagnoli, 256*8-32)
		c[8+2*i], c[8+2*i+1] = foldConst(castagnoli, 64*8+32), foldConst(castagnoli, 64*8-32)
	}
	c[16], c[17] = foldConst(castagnoli, 16*8+32), foldConst(castagnoli, 16*8-32)
	return c
}()
