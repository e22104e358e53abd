package core

import (
	"fmt"
	"testing"
)

// TestChunks: ranges are whole blocks (the chunk size rounded up), cover the
// item once in order, and the last one is the remainder.
func TestChunks(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		block     int
		bytes     int64
		chunkSize int64
		want      string
	}{
		{mib, 0, 4 * mib, "[]"},
		{mib, 10, 4 * mib, "[0+10]"},
		{mib, 4 * mib, 4 * mib, "[0+4194304]"},
		{mib, 9 * mib, 4 * mib, "[0+4194304 4194304+4194304 8388608+1048576]"},
		{mib, 2*mib + 1, 3 * mib / 2, "[0+2097152 2097152+1]"},                       // 1.5 MiB rounds up to 2 blocks
		{mib, 3 * mib, 0, "[0+3145728]"},                                             // default 4 MiB
		{mib, 3 * mib, -1, "[0+3145728]"},                                            // default 4 MiB
		{4096, 10000, 1, "[0+4096 4096+4096 8192+1808]"},                             // at least one block
		{1000, 2500, 1500, "[0+2000 2000+500]"},                                      // blocks that are not powers of two
		{1<<31 - 1, 1 << 32, 1, "[0+2147483647 2147483647+2147483647 4294967294+2]"}, // the largest block
	}
	for _, c := range cases {
		m := &Manifest{BlockSize: c.block}
		mi := &ManifestItem{Bytes: c.bytes}
		var got []string
		for off, n := range m.Chunks(mi, c.chunkSize) {
			got = append(got, fmt.Sprintf("%d+%d", off, n))
		}
		if s := fmt.Sprint(got); s != c.want {
			t.Errorf("block %d, %d bytes, chunk %d: %s, want %s", c.block, c.bytes, c.chunkSize, s, c.want)
		}
	}
	// A consumer may stop early.
	m := &Manifest{BlockSize: 1}
	n := 0
	for range m.Chunks(&ManifestItem{Bytes: 100}, 1) {
		if n++; n == 3 {
			break
		}
	}
	if n != 3 {
		t.Errorf("stopped after %d ranges, want 3", n)
	}
}
