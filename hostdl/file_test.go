package hostdl

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/viacodec/viacodec/core"
)

// fileDst is a core.FetchItem.File that records what is written, or
// fails every write with err.
type fileDst struct {
	mu     sync.Mutex
	data   []byte
	writes int
	err    error
}

func (f *fileDst) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if f.err != nil {
		return 0, f.err
	}
	return copy(f.data[off:], p), nil
}

// An item with a File is downloaded through it, piece by piece and
// checked, and its Dst is not written; a write that fails ends the fetch
// at once with the writer's kind, without retries.
func TestFetchIntoFile(t *testing.T) {
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	c := newTestClient(t, ClientOptions{ChunkSize: 1 << 20})
	want := make([]byte, 5<<20+123)
	for i := range want {
		want[i] = byte(i * 31)
	}
	a, _ := core.NewArray(core.DTypeUint8, []int{len(want)}, core.RowMajor, want)
	msg, _ := publish(t, table, srv.Source(), []any{a}, core.PublishOptions{Receivers: 2})
	p, err := decoder(t, c).Plan(msg)
	if err != nil {
		t.Fatal(err)
	}

	dst := make([]byte, len(want))
	file := &fileDst{data: make([]byte, len(want))}
	d, err := p.Download(0, dst)
	if err != nil {
		t.Fatal(err)
	}
	d.Item.File = file
	if err := core.FetchAll(context.Background(), c, []core.Download{d}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file.data, want) || bytes.Count(dst, []byte{0}) != len(dst) {
		t.Fatalf("the file holds the item: %v; Dst untouched: %v", bytes.Equal(file.data, want), bytes.Count(dst, []byte{0}) == len(dst))
	}

	full := &fileDst{err: core.NewError(core.KindLimit, errors.New("no space left on device"), "offload: write")}
	d.Item.File = full
	err = core.FetchAll(context.Background(), c, []core.Download{d})
	wantKind(t, err, core.KindLimit)
	if full.writes > c.opts.Concurrency {
		t.Errorf("%d writes failed: the fetch went on after the first", full.writes)
	}
}
