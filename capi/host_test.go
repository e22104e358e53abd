package main

// Tests of the by-reference half in plain Go (host.go, and the ref paths
// of codec.go): two hosts on loopback, as the exports drive them.

import (
	"bytes"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/viacodec/viacodec/core"
)

func newTestHost(t *testing.T, name string) *host {
	t.Helper()
	h, err := newHost(hostOptions{name: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.close)
	return h
}

// refValue is a value with two arrays by reference (one twice) and one
// inline, as a skeleton and descriptors over Go memory standing for C's.
func refValue(t *testing.T) (skel []byte, descs []slotDesc, want []byte, keep []any) {
	t.Helper()
	big := make([]float32, 1<<18) // 1 MiB
	for i := range big {
		big[i] = float32(i)
	}
	w, _ := core.ArrayOf(nil, big)
	f, _ := core.NewArray(core.DTypeInt16, []int{1024, 512}, core.ColumnMajor, bytes.Repeat([]byte{1, 2}, 1<<19))
	small, _ := core.ArrayOf(nil, []int64{1, 2, 3})
	skel, err := core.Marshal(map[string]any{"w": slotObject(0), "f": slotObject(1), "s": slotObject(2), "tied": slotObject(0)})
	if err != nil {
		t.Fatal(err)
	}
	dw, sw := descOf(w)
	df, sf := descOf(f)
	ds, ss := descOf(small)
	want, _ = core.Marshal(map[string]any{"w": w, "f": f, "s": small, "tied": w})
	return skel, []slotDesc{dw, df, ds}, want, []any{w, f, small, sw, sf, ss}
}

// receive decodes msg on h and downloads every slot into fresh Go memory,
// returning the value as core sees it.
func receive(t *testing.T, h *host, msg []byte) (any, error) {
	t.Helper()
	d, err := decodeMessage(msg, decOptions{}, refsSlots)
	if err != nil {
		return nil, err
	}
	descs := make([]slotDesc, len(d.slots))
	vals := make([]any, len(d.slots))
	for i, v := range d.slots {
		dtype, order, shape, nbytes := slotSpec(v)
		buf := make([]byte, max(nbytes, 1))
		descs[i] = slotDesc{data: unsafe.Pointer(&buf[0]), nbytes: nbytes, dtype: dtype}
		vals[i], _ = core.NewArray(core.DType(dtype), shape, core.Order(order), buf[:nbytes])
	}
	if err := fetchSlotsInto(h, d.slots, descs, int64(30*time.Second)); err != nil {
		return nil, err
	}
	sk, err := skelDecMode.Decode(d.skel.Bytes())
	if err != nil {
		return nil, err
	}
	return fillSlots(sk, vals)
}

func TestHostByRefRoundTrip(t *testing.T) {
	src, agent := newTestHost(t, "source"), newTestHost(t, "agent")
	skel, descs, want, keep := refValue(t)
	m, th, err := src.encode(skel, descs, publishOptions{receivers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if th == nil || m.Batch() == nil || len(m.Batch().Items) != 2 {
		t.Fatalf("want a transaction of 2 items, got %v", m.Batch())
	}
	msg := m.Bytes()
	if len(msg) > 1024 {
		t.Fatalf("message of %d bytes: the arrays went inline", len(msg))
	}
	// A relay: pass-through keeps the refs as they are.
	d, err := decodeMessage(msg, decOptions{passThrough: true}, refsSlots)
	if err != nil || len(d.slots) != 1 || !bytes.Equal(d.skel.Bytes()[len(d.skel.Bytes())-20:], msg[len(msg)-20:]) {
		t.Fatalf("pass-through: %v, %d slots", err, len(d.slots))
	}
	if _, err := decodeMessage(msg, decOptions{}, refsRefuse); kindOf(err) != core.KindInvalid {
		t.Fatalf("refs without a host: got %v", err)
	}
	if _, err := decodeMessage(msg, decOptions{maxArrayBytes: 1 << 20}, refsSlots); kindOf(err) != core.KindLimit {
		t.Fatalf("MaxArrayBytes counts refs: got %v", err)
	}

	v, err := receive(t, agent, msg)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := core.Marshal(v); !bytes.Equal(got, want) {
		t.Fatal("downloaded value differs")
	}
	out, err := th.wait(int64(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if out.State != core.StateCompleted || len(out.Confirmed()) != 1 || out.Confirmed()[0] != "agent" {
		t.Fatalf("outcome %+v", out)
	}
	th.close()
	if err := th.acquire(); kindOf(err) != core.KindInvalid {
		t.Fatalf("use after close: %v", err)
	}
	_ = keep
}

func TestHostTransactions(t *testing.T) {
	src, agent := newTestHost(t, "source"), newTestHost(t, "agent")
	skel, descs, _, keep := refValue(t)
	m, th, err := src.encode(skel, descs, publishOptions{receivers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := th.wait(0); kindOf(err) != core.KindTimeout {
		t.Fatalf("wait 0 on an open transaction: %v", err)
	}
	if out, ended := th.status(); ended || out.State != core.StateOpen {
		t.Fatalf("status %v %v", out, ended)
	}
	// Waiters are released by close, which aborts the transaction.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			if err := th.acquire(); err != nil {
				errs <- nil // closed already
				return
			}
			defer th.done()
			_, err := th.wait(-1)
			errs <- err
		})
	}
	time.Sleep(20 * time.Millisecond)
	th.close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && kindOf(err) != core.KindAborted {
			t.Fatalf("waiter: %v", err)
		}
	}
	if _, err := receive(t, agent, m.Bytes()); kindOf(err) != core.KindExpired {
		t.Fatalf("download of an aborted batch: %v", err)
	}
	// Bad publish options.
	for _, o := range []publishOptions{{receivers: -1}, {quorum: 2, receivers: 1}, {timeoutNs: -1}, {maxDepth: 5000}, {refThreshold: -1}} {
		if _, _, err := src.encode(skel, descs, o); kindOf(err) != core.KindInvalid {
			t.Fatalf("options %+v: got %v", o, err)
		}
	}
	// Every array inline: no transaction.
	if m, th, err := src.encode(skel, descs, publishOptions{refThreshold: 1 << 30}); err != nil || th != nil || m.Batch() != nil {
		t.Fatalf("all inline: %v %v", th, err)
	}
	_ = keep
}

func TestHostCloseCancelsDownloads(t *testing.T) {
	src := newTestHost(t, "source")
	agent, err := newHost(hostOptions{name: "agent", concurrency: 1, chunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 256<<20)
	a, _ := core.NewArray(core.DTypeUint8, []int{len(big)}, core.RowMajor, big)
	skel, _ := core.Marshal([]any{slotObject(0)})
	d, _ := descOf(a)
	m, th, err := src.encode(skel, []slotDesc{d}, publishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer th.close()
	done := make(chan error, 1)
	go func() {
		_, err := receive(t, agent, m.Bytes())
		done <- err
	}()
	for src.server.Stats().BytesServed == 0 {
		time.Sleep(time.Millisecond)
	}
	agent.close()
	if err := <-done; err != nil && kindOf(err) != core.KindAborted && kindOf(err) != core.KindInvalid {
		t.Fatalf("download cut by close: %v", err)
	}
	if err := agent.acquire(); kindOf(err) != core.KindInvalid {
		t.Fatalf("use after close: %v", err)
	}
}

func TestFetchRefsOnceEach(t *testing.T) {
	src, agent := newTestHost(t, "source"), newTestHost(t, "agent")
	skel, descs, _, keep := refValue(t)
	m, th, err := src.encode(skel, descs, publishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer th.close()
	lazy, err := core.DecOptions{PassThrough: true}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	v, err := lazy.Decode(m.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	w := v.(map[string]any)["w"].(*core.LazyRef)
	list, _ := core.Marshal([]any{w, w})
	bufs := [][]byte{make([]byte, w.Bytes()), make([]byte, w.Bytes())}
	dsts := []slotDesc{
		{data: unsafe.Pointer(&bufs[0][0]), nbytes: uint64(w.Bytes()), dtype: int32(w.DType)},
		{data: unsafe.Pointer(&bufs[1][0]), nbytes: uint64(w.Bytes()), dtype: int32(w.DType)},
	}
	if err := fetchRefs(agent, list, dsts, -1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bufs[0], bufs[1]) || !bytes.Equal(bufs[0], unsafe.Slice((*byte)(descs[0].data), descs[0].nbytes)) {
		t.Fatal("the two destinations differ from the array")
	}
	_, rs := th.tx.Status()
	if len(rs) != 1 || rs[0].Bytes != w.Bytes() {
		t.Fatalf("served %+v, want the item once", rs)
	}
	dsts[1].nbytes--
	if err := fetchRefs(agent, list, dsts, -1); kindOf(err) != core.KindMismatch {
		t.Fatalf("short destination: %v", err)
	}
	notRefs, _ := core.Marshal([]any{int64(1)})
	if err := fetchRefs(nil, notRefs, dsts[:1], -1); kindOf(err) != core.KindInvalid {
		t.Fatalf("not a ref: %v", err)
	}
	_ = keep
}

// TestShareHandleRunsUsesInParallel: a shared handle's uses do not hold
// its entry, so a release during a long use closes the object (which ends
// the use) instead of waiting for it.
func TestShareHandleRunsUsesInParallel(t *testing.T) {
	tab := newHandleTable()
	h := tab.add(&sharedCounter{})
	var wg sync.WaitGroup
	started := make(chan struct{}, 2)
	for range 2 {
		wg.Go(func() {
			c, done, err := shareHandle[*sharedCounter](tab, h, "a counter")
			if err != nil {
				t.Error(err)
				return
			}
			started <- struct{}{}
			<-c.stop // ends when closed
			done()
		})
	}
	<-started
	<-started // both uses run at once
	if err := tab.release(h); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, _, err := shareHandle[*sharedCounter](tab, h, "a counter"); kindOf(err) != core.KindInvalid {
		t.Fatalf("use after release: %v", err)
	}
}

type sharedCounter struct {
	mu     sync.RWMutex
	once   sync.Once
	stop   chan struct{}
	closed bool
}

func (c *sharedCounter) init() { c.once.Do(func() { c.stop = make(chan struct{}) }) }

func (c *sharedCounter) acquire() error {
	c.init()
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return errorf(core.KindInvalid, "closed")
	}
	return nil
}

func (c *sharedCounter) done() { c.mu.RUnlock() }

func (c *sharedCounter) close() {
	c.init()
	close(c.stop) // ends the uses, as a host cancels its downloads
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}
