package crc32c

import (
	"hash/crc32"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestFoldConst checks foldConst against the multipliers hash/crc32
// uses for the IEEE polynomial (the same method, another polynomial).
func TestFoldConst(t *testing.T) {
	const ieee = 0x04C11DB7
	for _, c := range []struct {
		n    int
		want uint64
	}{{544, 0x154442bd4}, {480, 0x1c6e41596}, {160, 0x1751997d0}, {96, 0x0ccaa009e}, {64, 0x163cd6124}} {
		if got := foldConst(ieee, c.n); got != c.want {
			t.Errorf("IEEE x^%d: %#x, want %#x", c.n, got, c.want)
		}
	}
	if got, want := foldConst(castagnoli, 32), uint64(bits.Reverse32(castagnoli))<<1; got != want {
		t.Errorf("Castagnoli x^32: %#x, want the polynomial reflected, %#x", got, want)
	}
}

// TestUpdate compares Update with hash/crc32 on every length up to a few
// folds, at every alignment and from several CRCs, and on long inputs.
func TestUpdate(t *testing.T) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 3<<20+64)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	check := func(crc uint32, p []byte) {
		t.Helper()
		if got, want := Update(crc, p), crc32.Update(crc, tab, p); got != want {
			t.Fatalf("Update(%#x, %d bytes at %p) = %#x, want %#x", crc, len(p), p, got, want)
		}
	}
	for n := 0; n <= 4*foldMin; n++ {
		for _, off := range []int{0, 1, 7, 13} {
			check(0, buf[off:off+n])
			check(uint32(n)*0x9E3779B9, buf[off:off+n])
		}
	}
	for _, n := range []int{1 << 20, 1<<20 + 4, 3<<20 + 63, 3 << 20} {
		check(0, buf[:n])
		check(0xFFFFFFFF, buf[64-n%64:][:n])
	}
	// All zeros and all ones: nothing a fold could hide.
	z := make([]byte, 1<<16)
	check(0, z)
	for i := range z {
		z[i] = 0xFF
	}
	check(0, z)
	if Checksum(buf[:1<<20]) != crc32.Checksum(buf[:1<<20], tab) {
		t.Fatal("Checksum differs from hash/crc32")
	}
}

// TestUpdateSplits checks that a CRC carried across any split of the
// input is the CRC of the whole, as a download's pieces arrive in reads.
func TestUpdateSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	want := Checksum(buf)
	for range 200 {
		var crc uint32
		for p := buf; len(p) > 0; {
			n := min(len(p), 1+rng.IntN(300<<10))
			crc = Update(crc, p[:n])
			p = p[n:]
		}
		if crc != want {
			t.Fatalf("split CRC %#x, want %#x", crc, want)
		}
	}
}

func FuzzUpdate(f *testing.F) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	f.Add(uint32(0), make([]byte, 2048))
	seed := make([]byte, 5000)
	for i := range seed {
		seed[i] = byte(i * 131)
	}
	f.Add(uint32(0xFFFFFFFF), seed)
	f.Add(uint32(12345), seed[3:4099])
	f.Fuzz(func(t *testing.T, crc uint32, p []byte) {
		if got, want := Update(crc, p), crc32.Update(crc, tab, p); got != want {
			t.Fatalf("Update(%#x, %d bytes) = %#x, want %#x", crc, len(p), got, want)
		}
	})
}

// BenchmarkUpdate compares Update with hash/crc32 on a 1 MiB piece, in
// cache, as a receiver checksums each read.
func BenchmarkUpdate(b *testing.B) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	p := make([]byte, 1<<20)
	b.Run("crc32c", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			Update(0, p)
		}
	})
	b.Run("hash-crc32", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			crc32.Update(0, tab, p)
		}
	})
}
