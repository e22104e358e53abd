package hostdl

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
)

// TestPieceSumsRemembered: a source checksums each piece once. The first
// range served remembers the sums of its pieces (core.PieceSums), and a
// later range sends the remembered ones: a sum set wrong shows in what
// it sends, at the right piece of a range that starts past the item's
// first piece.
func TestPieceSumsRemembered(t *testing.T) {
	const pieces = 8
	size := pieces*writePiece + 100 // a short last piece
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	mdl := newModel(size, 1, 7)
	em, _ := core.EncOptions{ByRef: true, Source: srv.Source(), RefThreshold: 1}.EncMode()
	msg, err := em.Encode(mdl.body())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := table.Publish(msg.Batch(), core.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	ref := msg.Batch().Ref
	if table.PieceSums(ref.RefID, make([]byte, len(ref.Token))) != nil {
		t.Fatal("PieceSums answered a wrong token")
	}
	get := func(receiver string, from int) []byte {
		t.Helper()
		hdr := map[string]string{"Authorization": bearer(ref), headerReceiver: receiver, "Range": "bytes=" + strconv.Itoa(from) + "-" + strconv.Itoa(size-1)}
		code, body, _ := rawDo(t, http.MethodGet, batchURL(srv, ref, "items/0"), hdr)
		if code != http.StatusPartialContent {
			t.Fatalf("status %d: %s", code, body)
		}
		return body
	}
	if !bytes.Equal(unframe(t, get("a", 0)), mdl.raw) {
		t.Fatal("the first range's bytes differ")
	}
	sums := table.PieceSums(ref.RefID, ref.Token[:])
	for k := range pieces + 1 {
		want := core.Checksum(mdl.raw[k*writePiece : min((k+1)*writePiece, size)])
		if got, ok := sums.Get(0, int64(k)); !ok || got != want {
			t.Fatalf("piece %d: remembered %08x %v, want %08x", k, got, ok, want)
		}
	}
	if _, ok := sums.Get(0, pieces+1); ok {
		t.Fatal("a piece past the item's end has a sum")
	}

	want3, _ := sums.Get(0, 3)
	sums.Set(0, 3, ^want3)
	body := get("b", 2*writePiece) // pieces 2, 3, ...
	frame := writePiece + crcSize
	if got := binary.BigEndian.Uint32(body[2*frame-crcSize:]); got != ^want3 {
		t.Fatalf("piece 3 went out with %08x, not the remembered %08x", got, ^want3)
	}
	if got, want := binary.BigEndian.Uint32(body[frame-crcSize:]), core.Checksum(mdl.raw[2*writePiece:3*writePiece]); got != want {
		t.Fatalf("piece 2 went out with %08x, want %08x", got, want)
	}
}

// TestRelayPieceSumsRemembered: a relay checksums each piece it serves
// once, like an origin: after one receiver, every piece's sum is known
// there, and a later receiver gets the remembered sums (one set wrong
// fails its download with a checksum error).
func TestRelayPieceSumsRemembered(t *testing.T) {
	table := newTable(t)
	origin := startServer(t, table, ServerOptions{})
	mdl := newModel(3*writePiece+100, 2, 3)
	msg, _ := publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{})
	relay := startRelay(t, RelayOptions{})
	held, err := relay.Forward(msg)
	if err != nil {
		t.Fatal(err)
	}
	if errs := decodeAll(t, held, 1, mdl, ClientOptions{}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	b := onlyBatch(t, relay)
	sums := relayTable{relay}.PieceSums(b.ref.RefID, b.ref.Token[:])
	if sums == nil {
		t.Fatal("the relay keeps no sums")
	}
	for _, mi := range b.m.Items {
		for k := int64(0); k*writePiece < mi.Bytes; k++ {
			if _, ok := sums.Get(mi.ID, k); !ok {
				t.Fatalf("item %d piece %d: no sum after a receiver was served it", mi.ID, k)
			}
		}
	}
	item := b.m.Items[0].ID
	s, _ := sums.Get(item, 1)
	sums.Set(item, 1, ^s)
	err = decodeAll(t, held, 1, mdl, ClientOptions{Retries: 1})[0]
	if core.KindOf(err) != core.KindChecksum {
		t.Fatalf("a receiver sent a wrong remembered sum: %v, want a checksum error", err)
	}
}

// TestHostSumsAhead: a host computes the sums of what it publishes in the
// background, before any receiver asks; the server then sends each piece
// with its remembered sum. Close stops the background and leaves no
// goroutine.
func TestHostSumsAhead(t *testing.T) {
	settle := numGoroutine()
	h, err := NewHost(HostOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mdl := newModel(6<<20, 3, 8)
	_, tx := send(t, h, mdl.body(), core.PublishOptions{})
	ref := tx.Ref()
	sums := h.Table().(pieceSumTable).PieceSums(ref.RefID, ref.Token[:])
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		known := 0
		for item := range 3 { // 3 items of 2 pieces; core's TestSumPieces checks the sums
			for k := range int64(2) {
				if _, ok := sums.Get(item, k); ok {
					known++
				}
			}
		}
		if known == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 6 pieces' sums known 20 s after the publish, no receiver having asked", known)
		}
	}
	// Many publishes, then Close at once: the background stops with it.
	for range 20 {
		send(t, h, mdl.body(), core.PublishOptions{})
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	settleGoroutines(t, settle)
}

// TestUploadSumsKnown: a holder keeps the CRCs it checked as a batch was
// uploaded: once committed, every piece's sum is known to its table, so
// that it serves the batch without checksumming any of it.
func TestUploadSumsKnown(t *testing.T) {
	holder := newTestHost(t, HostOptions{UploadBudget: 64 << 20})
	mdl := newModel(5<<20+400, 2, 12)
	grant, err := holder.GrantUpload(UploadOptions{MaxBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	msg := encodeFor(t, grant, mdl.body())
	up, err := newTestClient(t, ClientOptions{Receiver: "source"}).Upload(t.Context(), grant, msg.Batch(), core.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := up.Ref()
	sums := holder.Table().(pieceSumTable).PieceSums(ref.RefID, ref.Token[:])
	for _, it := range msg.Batch().Items {
		for k := int64(0); k*writePiece < int64(len(it.Data)); k++ {
			want := core.Checksum(it.Data[k*writePiece : min((k+1)*writePiece, int64(len(it.Data)))])
			if got, ok := sums.Get(it.ID, k); !ok || got != want {
				t.Fatalf("item %d piece %d: %08x %v, want %08x from the upload", it.ID, k, got, ok, want)
			}
		}
	}
}

// TestRelayKeepsUpstreamSums: a relay keeps the CRCs it checked as it
// fetched a piece from upstream: once the piece is at hand, before its
// server wrote a byte of it, every 1 MiB piece's sum in it is known, as
// the origin sent it.
func TestRelayKeepsUpstreamSums(t *testing.T) {
	table := newTable(t)
	origin := startServer(t, table, ServerOptions{})
	mdl := newModel(3*writePiece+100, 1, 13)
	msg, _ := publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{})
	relay := startRelay(t, RelayOptions{})
	if _, err := relay.Forward(msg); err != nil {
		t.Fatal(err)
	}
	b := onlyBatch(t, relay)
	rt := relayTable{relay}
	next, release, err := rt.ServePieces(b.ref.RefID, b.ref.Token[:], "r", "", 0, 0, int64(len(mdl.raw)))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	view, err := next() // the relay's first piece, 4 MiB: the whole item
	if err != nil || len(view) != len(mdl.raw) {
		t.Fatalf("first view: %d bytes, %v", len(view), err)
	}
	sums := rt.PieceSums(b.ref.RefID, b.ref.Token[:])
	for k := int64(0); k*writePiece < int64(len(view)); k++ {
		want := core.Checksum(view[k*writePiece : min((k+1)*writePiece, int64(len(view)))])
		if got, ok := sums.Get(0, k); !ok || got != want {
			t.Fatalf("piece %d: %08x %v before any write, want the upstream's %08x", k, got, ok, want)
		}
	}
}

// onlyBatch returns the one batch relay holds.
func onlyBatch(t *testing.T, relay *Relay) *heldBatch {
	t.Helper()
	relay.mu.Lock()
	defer relay.mu.Unlock()
	if len(relay.batches) != 1 {
		t.Fatalf("the relay holds %d batches, want 1", len(relay.batches))
	}
	for _, b := range relay.batches {
		return b
	}
	return nil
}
