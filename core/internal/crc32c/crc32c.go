// Package crc32c computes CRC-32C (Castagnoli), the checksum of every
// piece a download moves, as hash/crc32 does with its Castagnoli table,
// and faster on long inputs where the processor can: on amd64 with
// AVX-512 and VPCLMULQDQ it folds 256 bytes per step with carry-less
// multiplications (the method of Intel's "Fast CRC Computation for Generic
// Polynomials Using PCLMULQDQ Instruction"), more than twice the rate of
// the SSE4.2 instruction hash/crc32 uses for CRC-32C. Elsewhere, and for
// inputs under foldMin bytes, it is hash/crc32.
package crc32c

import "hash/crc32"

var table = crc32.MakeTable(crc32.Castagnoli)

// foldMin is the length from which Update folds: below it the vector
// unit's start-up costs more than it saves.
const foldMin = 1024

// Checksum returns the CRC-32C of p.
func Checksum(p []byte) uint32 { return Update(0, p) }

// Update returns the CRC-32C of the bytes whose CRC-32C is crc followed by
// p.
func Update(crc uint32, p []byte) uint32 {
	if haveFold && len(p) >= foldMin {
		n := len(p) &^ 63
		crc = ^fold(^crc, p[:n])
		p = p[n:]
	}
	return crc32.Update(crc, table, p)
}
