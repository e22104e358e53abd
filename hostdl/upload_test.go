package hostdl

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
)

// encodeFor encodes body by reference for the holder of g.
func encodeFor(tb testing.TB, g UploadGrant, body any) *core.Message {
	tb.Helper()
	em, err := core.EncOptions{ByRef: true, Source: g.Holder, RefThreshold: 1}.EncMode()
	if err != nil {
		tb.Fatal(err)
	}
	msg, err := em.Encode(body)
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}

// TestUploadNoListener: a source with no server at all (a Client: it can
// only dial out) uploads its batch to the holder, which is also one of
// its receivers (and reads the batch locally); another receiver downloads
// it from the holder. The source's Wait learns that both confirmed, and
// the holder gives the bytes back to its budget.
func TestUploadNoListener(t *testing.T) {
	settle := numGoroutine()
	holder := newTestHost(t, HostOptions{UploadBudget: 64 << 20})
	mdl := newModel(10<<20, 3, 11)
	grant, err := holder.GrantUpload(UploadOptions{MaxBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	source := newTestClient(t, ClientOptions{Receiver: "source"})
	msg := encodeFor(t, grant, mdl.body())
	up, err := source.Upload(t.Context(), grant, msg.Batch(), core.PublishOptions{Names: []string{holder.Receiver(), "agent"}})
	if err != nil {
		t.Fatal(err)
	}
	if up.Ref().Source != holder.Source() {
		t.Fatalf("the uploaded batch is at %q, want the holder %q", up.Ref().Source, holder.Source())
	}
	served := holder.Stats().BytesServed
	dm, err := holder.DecMode(core.DecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := dm.Decode(msg.Bytes())
	if err == nil {
		err = mdl.check(v)
	}
	if err != nil {
		t.Fatalf("the holder as receiver: %v", err)
	}
	if got := holder.Stats().BytesServed; got != served {
		t.Errorf("the holder's own download went over HTTP (%d bytes served)", got-served)
	}
	agent := newTestClient(t, ClientOptions{Receiver: "agent"})
	v, err = decoder(t, agent).Decode(msg.Bytes())
	if err == nil {
		err = mdl.check(v)
	}
	if err != nil {
		t.Fatalf("the agent: %v", err)
	}
	out, err := up.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ids := out.Confirmed()
	slices.Sort(ids)
	want := []string{"agent", holder.Receiver()}
	slices.Sort(want)
	if out.State != core.StateCompleted || !slices.Equal(ids, want) {
		t.Fatalf("the source learned %v confirmed by %v, want completed by %v", out.State, ids, want)
	}
	granted := func() int64 {
		holder.uploads.mu.Lock()
		defer holder.uploads.mu.Unlock()
		return holder.uploads.granted
	}
	for deadline := time.Now().Add(5 * time.Second); granted() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the holder still counts %d granted bytes after the transaction", granted())
		}
	}
	holder.Close()
	source.Close()
	agent.Close()
	settleGoroutines(t, settle)
}

// TestUploadRefused: a holder refuses a batch larger than its grant, an
// upload after the grant expired, a wrong token, and grants beyond its
// budget; none of them leaves bytes counted.
func TestUploadRefused(t *testing.T) {
	holder := newTestHost(t, HostOptions{UploadBudget: 8 << 20})
	source := newTestClient(t, ClientOptions{Retries: -1})
	mdl := newModel(4<<20, 2, 12)

	small, err := holder.GrantUpload(UploadOptions{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	_, err = source.Upload(t.Context(), small, encodeFor(t, small, mdl.body()).Batch(), core.PublishOptions{})
	wantKind(t, err, core.KindLimit)

	short, err := holder.GrantUpload(UploadOptions{MaxBytes: 4 << 20, Timeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	_, err = source.Upload(t.Context(), short, encodeFor(t, short, mdl.body()).Batch(), core.PublishOptions{})
	wantKind(t, err, core.KindExpired)

	g, err := holder.GrantUpload(UploadOptions{MaxBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	forged := g
	forged.Token = "00" + g.Token[2:]
	if forged.Token == g.Token {
		forged.Token = "11" + g.Token[2:]
	}
	_, err = source.Upload(t.Context(), forged, encodeFor(t, forged, mdl.body()).Batch(), core.PublishOptions{})
	wantKind(t, err, core.KindAuth)

	if _, err := holder.GrantUpload(UploadOptions{MaxBytes: 8 << 20}); core.KindOf(err) != core.KindLimit {
		t.Errorf("a grant beyond the budget: %v, want limit", err)
	}
	for _, o := range []UploadOptions{{}, {MaxBytes: -1}, {MaxBytes: 1, Timeout: -1}} {
		if _, err := holder.GrantUpload(o); core.KindOf(err) != core.KindInvalid {
			t.Errorf("GrantUpload(%+v): %v, want invalid", o, err)
		}
	}
	// The small grant's manifest was refused and its bytes never taken;
	// the expired one's were given back.
	holder.uploads.mu.Lock()
	granted := holder.uploads.granted
	holder.uploads.mu.Unlock()
	if granted != (1<<20)+(4<<20) {
		t.Errorf("granted %d bytes, want the two live grants' %d", granted, (1<<20)+(4<<20))
	}
	// The good grant still works.
	up, err := newTestClient(t, ClientOptions{}).Upload(t.Context(), g, encodeFor(t, g, mdl.body()).Batch(), core.PublishOptions{Receivers: 1})
	if err != nil {
		t.Fatal(err)
	}
	up.Ref()
}

// TestUploadCorruptRange: a range whose bytes break on the way is refused
// by the holder (checksum) and sent again; the receivers get the right
// value.
func TestUploadCorruptRange(t *testing.T) {
	holder := newTestHost(t, HostOptions{})
	mdl := newModel(6<<20, 2, 13)
	g, err := holder.GrantUpload(UploadOptions{MaxBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	source := newTestClient(t, ClientOptions{BackoffMin: time.Millisecond})
	var flipped atomic.Int32
	source.hc.Transport = &corruptingTransport{next: source.tr, flipped: &flipped}
	msg := encodeFor(t, g, mdl.body())
	up, err := source.Upload(t.Context(), g, msg.Batch(), core.PublishOptions{Receivers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if flipped.Load() != 1 {
		t.Fatal("no range was corrupted")
	}
	v, err := decoder(t, newTestClient(t, ClientOptions{})).Decode(msg.Bytes())
	if err == nil {
		err = mdl.check(v)
	}
	if err != nil {
		t.Fatal(err)
	}
	if out, err := up.Wait(t.Context()); err != nil || out.State != core.StateCompleted {
		t.Fatalf("outcome %v, %v", out.State, err)
	}
}

// corruptingTransport flips one bit in the body of the first item range
// it sends.
type corruptingTransport struct {
	next    http.RoundTripper
	flipped *atomic.Int32
}

func (c *corruptingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && r.Header.Get("Content-Range") != "" && c.flipped.CompareAndSwap(0, 1) {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		data[len(data)/2] ^= 1
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(data))
	}
	return c.next.RoundTrip(r)
}

// TestUploadHolderGone: a holder that goes away while a source uploads,
// or while it waits for the outcome, gives the source a clear error
// (unavailable, or the holder's own word), no hang, and no goroutine
// left behind.
func TestUploadHolderGone(t *testing.T) {
	settle := numGoroutine()
	mdl := newModel(12<<20, 3, 14)
	fast := ClientOptions{Retries: 1, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond, ChunkSize: 1 << 20, Concurrency: 1}

	// Mid-upload: the holder closes after the first range arrived.
	holder, err := NewHost(HostOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	g, err := holder.GrantUpload(UploadOptions{MaxBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	source := newTestClient(t, fast)
	var ranges atomic.Int32
	source.hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPut && r.Header.Get("Content-Range") != "" && ranges.Add(1) == 2 {
			holder.Close()
		}
		return source.tr.RoundTrip(r)
	})
	_, err = source.Upload(t.Context(), g, encodeFor(t, g, mdl.body()).Batch(), core.PublishOptions{Receivers: 1})
	if k := core.KindOf(err); k != core.KindUnavailable && k != core.KindExpired {
		t.Fatalf("upload to a holder that closed: %v, want unavailable (or expired)", err)
	}

	// While waiting: the outcome cannot come.
	holder2, err := NewHost(HostOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	g2, err := holder2.GrantUpload(UploadOptions{MaxBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	source2 := newTestClient(t, fast)
	up, err := source2.Upload(t.Context(), g2, encodeFor(t, g2, mdl.body()).Batch(), core.PublishOptions{Receivers: 1})
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(50 * time.Millisecond); holder2.Close() }()
	out, err := up.Wait(t.Context())
	switch {
	case err == nil && out.State != core.StateDeleted:
		t.Fatalf("wait on a holder that closed: %v, want an error or a deleted transaction", out.State)
	case err != nil && core.KindOf(err) != core.KindUnavailable && core.KindOf(err) != core.KindExpired:
		t.Fatalf("wait on a holder that closed: %v", err)
	}
	source.Close()
	source2.Close()
	settleGoroutines(t, settle)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
