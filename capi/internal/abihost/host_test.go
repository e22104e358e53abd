package abihost

// Tests of the by-reference half: real hosts on loopback, driven as the
// shells drive them (every call through a handle table).

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
	"github.com/viacodec/viacodec/internal/abi/abitest"
)

// addHost starts a host on loopback and puts it in tab; the test releases
// it, or the cleanup does.
func addHost(t *testing.T, tab *abi.Table, o HostOptions) (int64, *Host) {
	t.Helper()
	h, err := NewHost(o)
	if err != nil {
		t.Fatal(err)
	}
	hh := tab.Add(h)
	t.Cleanup(func() { _ = tab.Release(hh) })
	return hh, h
}

// use returns the object behind h, failing the test if there is none; the
// use ends with the test.
func use[T any](t *testing.T, tab *abi.Table, h int64) T {
	t.Helper()
	obj, done, err := abi.Use[T](tab, h, "the test's object")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(done)
	return obj
}

// refValue is a value with two arrays by reference ("w" twice) and one
// inline, as a skeleton and slots, and the message core writes for it
// inline.
func refValue(t *testing.T) (skel []byte, slots []abi.Slot, want []byte) {
	t.Helper()
	big := make([]float32, 1<<18) // 1 MiB
	for i := range big {
		big[i] = float32(i)
	}
	w, _ := core.ArrayOf(nil, big)
	f, _ := core.NewArray(core.DTypeInt16, []int{1024, 512}, core.ColumnMajor, bytes.Repeat([]byte{1, 2}, 1<<19))
	small, _ := core.ArrayOf(nil, []int64{1, 2, 3})
	skel = abitest.Skeleton(t, map[string]any{"w": core.SlotIndex(0), "f": core.SlotIndex(1), "s": core.SlotIndex(2), "tied": core.SlotIndex(0)})
	want, err := core.Marshal(map[string]any{"w": w, "f": f, "s": small, "tied": w})
	if err != nil {
		t.Fatal(err)
	}
	return skel, []abi.Slot{abi.SlotOf(w), abi.SlotOf(f), abi.SlotOf(small)}, want
}

// publish encodes skel and slots by reference on the host behind hh and
// puts the transaction in tab.
func publish(t *testing.T, tab *abi.Table, hh int64, skel []byte, slots []abi.Slot, o PublishOptions) ([]byte, int64) {
	t.Helper()
	h, done, err := abi.Use[*Host](tab, hh, "a host")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	m, tx, err := h.Encode(context.Background(), skel, slots, o)
	if err != nil {
		t.Fatal(err)
	}
	if tx == nil {
		t.Fatal("every array went inline")
	}
	th := tab.Add(tx)
	t.Cleanup(func() { _ = tab.Release(th) })
	return m.Bytes(), th
}

// receive decodes msg for the host behind hh and downloads every slot into
// fresh memory, as vc_host_decode and vc_decode_fetch do; it returns the
// value encoded inline.
func receive(tab *abi.Table, hh int64, msg []byte) ([]byte, error) {
	if err := CheckHost(tab, hh); err != nil {
		return nil, err
	}
	d, err := abi.Decode(msg, abi.DecOptions{}, true, hh)
	if err != nil {
		return nil, err
	}
	dsts := abi.Destinations(d.Specs)
	if err := FetchThrough(tab, d, dsts, int64(30*time.Second)); err != nil {
		return nil, err
	}
	mode, err := abi.EncOptions{}.EncMode()
	if err != nil {
		return nil, err
	}
	m, err := abi.Encode(d.Skeleton.Bytes(), dsts, mode)
	if err != nil {
		return nil, err
	}
	return m.Bytes(), nil
}

// mustReceive is receive that fails the test unless it gives want.
func mustReceive(t *testing.T, tab *abi.Table, hh int64, msg, want []byte) {
	t.Helper()
	got, err := receive(tab, hh, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("downloaded\n %x\nwant\n %x", got, want)
	}
}

func TestHostByRefRoundTrip(t *testing.T) {
	tab := abi.NewTable()
	src, _ := addHost(t, tab, HostOptions{Name: "source"})
	agent, _ := addHost(t, tab, HostOptions{Name: "agent"})
	skel, slots, want := refValue(t)
	msg, th := publish(t, tab, src, skel, slots, PublishOptions{Receivers: 1})
	tx := use[*Tx](t, tab, th)
	if ref := tx.tx.Ref(); ref.Items != 2 {
		t.Fatalf("batch of %d items, want 2", ref.Items)
	}
	if len(msg) > 1024 {
		t.Fatalf("message of %d bytes: the arrays went inline", len(msg))
	}

	// A relay: pass-through keeps the refs as lazy refs in the skeleton,
	// and encoding it again gives the same message.
	d, err := abi.Decode(msg, abi.DecOptions{PassThrough: true}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Specs) != 1 || d.Specs[0].Ref {
		t.Fatalf("pass-through: slots %+v, want the inline one", d.Specs)
	}
	dsts := abi.Destinations(d.Specs)
	if err := abi.Fill(d, dsts); err != nil {
		t.Fatal(err)
	}
	relayed, err := abi.Encode(d.Skeleton.Bytes(), dsts, abitest.PlainMode(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(relayed.Bytes(), msg) {
		t.Fatal("relayed message differs")
	}

	_, err = abi.Decode(msg, abi.DecOptions{}, false, 0)
	abitest.WantKind(t, "refs without a host", err, core.KindInvalid)
	for _, o := range []abi.DecOptions{{MaxArrayBytes: 1 << 20}, {MaxArrayBytes: 1 << 20, PassThrough: true}} {
		_, err = abi.Decode(msg, o, true, agent)
		abitest.WantKind(t, "MaxArrayBytes counts refs", err, core.KindLimit)
	}
	d, err = abi.Decode(msg, abi.DecOptions{}, true, agent)
	if err != nil {
		t.Fatal(err)
	}
	if d.Host() != agent {
		t.Fatalf("host %d, want %d", d.Host(), agent)
	}
	err = abi.Fill(d, abi.Destinations(d.Specs))
	abitest.WantKind(t, "Fill of a referenced slot", err, core.KindInvalid)

	mustReceive(t, tab, agent, msg, want)
	out, err := tx.Wait(int64(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if out.State != core.StateCompleted || !slices.Equal(out.Confirmed(), []string{"agent"}) {
		t.Fatalf("outcome %+v", out)
	}
	if st, ended := tx.Status(); !ended || st.State != core.StateCompleted {
		t.Fatalf("status %+v ended %v", st, ended)
	}
}

// TestFetchEachItemOnce: an item the message names twice, or that two
// lazy refs name, is one slot and is downloaded once.
func TestFetchEachItemOnce(t *testing.T) {
	tab := abi.NewTable()
	src, _ := addHost(t, tab, HostOptions{Name: "source"})
	skel, slots, _ := refValue(t)
	msg, th := publish(t, tab, src, skel, slots, PublishOptions{})
	tx := use[*Tx](t, tab, th)
	served := func(receiver string) int64 {
		_, rs := tx.tx.Status()
		for _, r := range rs {
			if r.ID == receiver {
				return r.Bytes
			}
		}
		return 0
	}
	w, f := slots[0].Data, slots[1].Data

	// "w" and "tied" are one item: three slots, two of them downloaded.
	agent, _ := addHost(t, tab, HostOptions{Name: "agent"})
	d, err := abi.Decode(msg, abi.DecOptions{}, true, agent)
	if err != nil {
		t.Fatal(err)
	}
	refs := 0
	for _, s := range d.Specs {
		if s.Ref {
			refs++
		}
	}
	if len(d.Specs) != 3 || refs != 2 {
		t.Fatalf("slots %+v, want 3 of which 2 by reference", d.Specs)
	}
	if _, err := receive(tab, agent, msg); err != nil {
		t.Fatal(err)
	}
	if got := served("agent"); got != int64(len(w)+len(f)) {
		t.Fatalf("served %d bytes, want each item once (%d)", got, len(w)+len(f))
	}

	// Lazy refs from a pass-through decode, resolved together: a message
	// that holds them, decoded for a host, then fetched.
	lazy, err := core.DecOptions{PassThrough: true}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	v, err := lazy.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	lw := v.(map[string]any)["w"].(*core.LazyRef)
	list, err := core.Marshal([]any{lw, lw, v.(map[string]any)["tied"]})
	if err != nil {
		t.Fatal(err)
	}
	resolver, _ := addHost(t, tab, HostOptions{Name: "resolver"})
	d, err = abi.Decode(list, abi.DecOptions{}, true, resolver)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Specs) != 1 || !d.Specs[0].Ref || d.Specs[0].Bytes != uint64(len(w)) {
		t.Fatalf("slots %+v, want the one item", d.Specs)
	}
	// Destinations are checked before anything is downloaded.
	short := []abi.Slot{{Data: make([]byte, len(w)-1), DType: d.Specs[0].DType}}
	abitest.WantKind(t, "short destination", FetchThrough(tab, d, short, -1), core.KindMismatch)
	if got := served("resolver"); got != 0 {
		t.Fatalf("served %d bytes for a refused fetch", got)
	}
	// A destination without data is skipped: nothing to download.
	if err := FetchThrough(tab, d, []abi.Slot{{}}, -1); err != nil {
		t.Fatal(err)
	}
	dsts := abi.Destinations(d.Specs)
	if err := FetchThrough(tab, d, dsts, -1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dsts[0].Data, w) {
		t.Fatal("the destination differs from the array")
	}
	if got := served("resolver"); got != int64(len(w)) {
		t.Fatalf("served %d bytes, want the item once (%d)", got, len(w))
	}
}

// TestFetchDefaultClient: host 0 downloads through the library's own
// client.
func TestFetchDefaultClient(t *testing.T) {
	tab := abi.NewTable()
	src, _ := addHost(t, tab, HostOptions{Name: "source"})
	skel, slots, want := refValue(t)
	msg, _ := publish(t, tab, src, skel, slots, PublishOptions{})
	mustReceive(t, tab, 0, msg, want)
}

func TestHostTransactions(t *testing.T) {
	tab := abi.NewTable()
	src, _ := addHost(t, tab, HostOptions{Name: "source"})
	agent, _ := addHost(t, tab, HostOptions{Name: "agent"})
	skel, slots, _ := refValue(t)
	msg, th := publish(t, tab, src, skel, slots, PublishOptions{Receivers: 1})
	tx := use[*Tx](t, tab, th)
	if tx.RefID() == "" {
		t.Fatal("no ref id")
	}
	_, err := tx.Wait(0)
	abitest.WantKind(t, "wait 0 on an open transaction", err, core.KindTimeout)
	_, err = tx.Wait(int64(time.Millisecond))
	abitest.WantKind(t, "wait 1ms on an open transaction", err, core.KindTimeout)
	if out, ended := tx.Status(); ended || out.State != core.StateOpen {
		t.Fatalf("status %+v ended %v", out, ended)
	}
	tx.Abort()
	// The state is final at once; the transaction reports its end once no
	// serve reads the arrays any more (the host's checksums computed ahead
	// stop at their next block).
	if out, _ := tx.Status(); out.State != core.StateAborted {
		t.Fatalf("after abort: status %+v", out)
	}
	if out, err := tx.Wait(-1); err != nil || out.State != core.StateAborted {
		t.Fatalf("wait after abort: %+v %v", out, err)
	}
	if out, ended := tx.Status(); !ended || out.State != core.StateAborted {
		t.Fatalf("after the wait: status %+v ended %v", out, ended)
	}
	_, err = receive(tab, agent, msg)
	abitest.WantKind(t, "download of an aborted batch", err, core.KindExpired)

	h := use[*Host](t, tab, src)
	for _, o := range []PublishOptions{
		{Receivers: -1}, {Receivers: 1 << 40}, {Quorum: -1}, {Quorum: 2, Receivers: 1},
		{TimeoutNs: -1}, {MaxDepth: -1}, {MaxDepth: 5000}, {RefThreshold: -1},
	} {
		_, _, err := h.Encode(context.Background(), skel, slots, o)
		abitest.WantKind(t, "publish options", err, core.KindInvalid)
	}
	// Every array inline: no transaction.
	m, tx2, err := h.Encode(context.Background(), skel, slots, PublishOptions{RefThreshold: 1 << 30})
	if err != nil || tx2 != nil || m.Batch() != nil {
		t.Fatalf("all inline: %v %v", tx2, err)
	}
	if st := h.Stats(); st.Table.Open != 0 {
		t.Fatalf("%d transactions open", st.Table.Open)
	}
}

// TestTxWaiters: a waiter whose transaction completes gets its outcome;
// a waiter still blocked when the handle is released gets KindAborted,
// exactly; a wait that starts after the release finds no handle.
func TestTxWaiters(t *testing.T) {
	tab := abi.NewTable()
	src, _ := addHost(t, tab, HostOptions{Name: "source"})
	agent, _ := addHost(t, tab, HostOptions{Name: "agent"})
	skel, slots, _ := refValue(t)
	msgDone, thDone := publish(t, tab, src, skel, slots, PublishOptions{Receivers: 1})
	msgOpen, thOpen := publish(t, tab, src, skel, slots, PublishOptions{Receivers: 1})

	type result struct {
		out core.Outcome
		err error
	}
	// wait starts n waiters on th; each has its use registered before
	// wait returns.
	wait := func(th int64, n int) chan result {
		results := make(chan result, n)
		entered := make(chan struct{}, n)
		for range n {
			go func() {
				tx, done, err := abi.Use[*Tx](tab, th, "a transaction handle")
				if err != nil {
					results <- result{err: err}
					entered <- struct{}{}
					return
				}
				defer done()
				entered <- struct{}{}
				out, err := tx.Wait(-1)
				results <- result{out, err}
			}()
		}
		for range n {
			<-entered
		}
		return results
	}
	abitest.Within(t, 30*time.Second, "waiters", func() {
		completed := wait(thDone, 3)
		blocked := wait(thOpen, 4)
		if _, err := receive(tab, agent, msgDone); err != nil {
			t.Error(err)
			return
		}
		for range 3 {
			r := <-completed
			if r.err != nil || r.out.State != core.StateCompleted || !slices.Equal(r.out.Confirmed(), []string{"agent"}) {
				t.Errorf("waiter of the completed transaction: %+v, %v", r.out, r.err)
			}
		}
		if err := tab.Release(thDone); err != nil {
			t.Error(err)
		}
		select {
		case r := <-blocked:
			t.Errorf("a waiter returned before the release: %+v, %v", r.out, r.err)
		default:
		}
		if err := tab.Release(thOpen); err != nil {
			t.Error(err)
		}
		// Release returns once the waiters have: their results are in.
		for range 4 {
			select {
			case r := <-blocked:
				if abi.KindOf(r.err) != core.KindAborted {
					t.Errorf("blocked waiter: got %+v, %v; want kind %v", r.out, r.err, core.KindAborted)
				}
			default:
				t.Error("release returned before a waiter did")
			}
		}
	})
	for _, th := range []int64{thDone, thOpen} {
		_, _, err := abi.Use[*Tx](tab, th, "a transaction handle")
		abitest.WantKind(t, "wait after release", err, core.KindInvalid)
	}
	// The release aborted the open transaction.
	_, err := receive(tab, agent, msgOpen)
	abitest.WantKind(t, "download after release", err, core.KindExpired)
}

// TestHostReleaseCancelsDownloads: releasing a host cancels its download
// in progress (KindAborted, not a download run to its end) and closes the
// host; the handle is gone. (That a release waits for the calls in
// progress is TestUsesRunInParallel's and TestReleaseBetweenTwoUses'.)
func TestHostReleaseCancelsDownloads(t *testing.T) {
	tab := abi.NewTable()
	src, srcHost := addHost(t, tab, HostOptions{Name: "source"})
	agent, err := NewHost(HostOptions{Name: "agent", Concurrency: 1, ChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ah := tab.Add(agent)
	big := make([]byte, 64<<20)
	a, _ := core.NewArray(core.DTypeUint8, []int{len(big)}, core.RowMajor, big)
	msg, _ := publish(t, tab, src, abitest.Skeleton(t, []any{core.SlotIndex(0)}), []abi.Slot{abi.SlotOf(a)}, PublishOptions{})
	d, err := abi.Decode(msg, abi.DecOptions{}, true, ah)
	if err != nil {
		t.Fatal(err)
	}
	fetched := make(chan error, 1)
	go func() { fetched <- FetchThrough(tab, d, abi.Destinations(d.Specs), -1) }()
	abitest.Within(t, 30*time.Second, "a download cut by release", func() {
		for srcHost.Stats().BytesServed == 0 {
			time.Sleep(time.Millisecond)
		}
		if err := tab.Release(ah); err != nil {
			t.Error(err)
		}
		if err := <-fetched; abi.KindOf(err) != core.KindAborted {
			t.Errorf("download cut by release: got %v, want kind %v", err, core.KindAborted)
		}
	})
	if served := srcHost.Stats().BytesServed; served >= int64(len(big)) {
		t.Fatalf("all %d bytes served: the release cancelled nothing", served)
	}
	// Closed: its server no longer listens.
	u, err := url.Parse(agent.Source())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", u.Host, 5*time.Second); err == nil {
		c.Close()
		t.Fatalf("the released host still listens on %s", u.Host)
	}
	err = FetchThrough(tab, d, abi.Destinations(d.Specs), -1)
	abitest.WantKind(t, "fetch through a released host", err, core.KindInvalid)
	abitest.WantKind(t, "decode for a released host", CheckHost(tab, ah), core.KindInvalid)
}

// TestReleaseBetweenTwoUses replays the deadlock of the old C ABI: a call
// held a use of a host and then took a second one (vc_host_fetch's
// shareHandle, then the host's own read lock); a release that arrived in
// between waited for the first use, and the second waited behind the
// release, forever. Now the second use fails at once and the release
// completes when the first use ends.
func TestReleaseBetweenTwoUses(t *testing.T) {
	tab := abi.NewTable()
	host, err := NewHost(HostOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := tab.Add(host)
	abitest.Within(t, 5*time.Second, "use, release, second use", func() {
		hs, done, err := abi.Use[*Host](tab, h, "a host handle")
		if err != nil {
			t.Error(err)
			return
		}
		released := make(chan error, 1)
		go func() { released <- tab.Release(h) }()
		<-hs.ctx.Done() // the release has removed the handle and cancelled the host's downloads
		_, _, err = abi.Use[*Host](tab, h, "a host handle")
		if abi.KindOf(err) != core.KindInvalid {
			t.Errorf("second use during the release: got %v, want kind %v", err, core.KindInvalid)
		}
		select {
		case err := <-released:
			t.Errorf("the release returned (%v) while a use was in progress", err)
		default:
		}
		done()
		if err := <-released; err != nil {
			t.Error(err)
		}
	})
	if tab.Len() != 0 {
		t.Fatalf("%d handles left", tab.Len())
	}
}

// TestDecodeFetchRacesRelease: a decode-and-fetch (a use of the decode
// handle and two nested uses of its host, as the old vc_host_fetch took)
// in one goroutine and a release of the host in another, 200 times. Each
// round is bounded; each fetch succeeds with the right bytes or fails with
// KindInvalid (the host was gone) or KindAborted (the release cut it).
func TestDecodeFetchRacesRelease(t *testing.T) {
	tab := abi.NewTable()
	src, _ := addHost(t, tab, HostOptions{Name: "source"})
	payload := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 8<<10) // 64 KiB
	a, _ := core.NewArray(core.DTypeUint8, []int{len(payload)}, core.RowMajor, payload)
	msg, _ := publish(t, tab, src, abitest.Skeleton(t, []any{core.SlotIndex(0)}), []abi.Slot{abi.SlotOf(a)}, PublishOptions{RefThreshold: 1 << 10})
	// vc_decode_fetch, with a use of the host held around it as the old
	// vc_host_fetch held one: FetchThrough takes a second.
	fetch := func(dh int64, dst []abi.Slot) error {
		d, doneD, err := abi.Use[*abi.Decoded](tab, dh, "a decode handle")
		if err != nil {
			return err
		}
		defer doneD()
		_, doneH, err := abi.Use[*Host](tab, d.Host(), "a host handle")
		if err != nil {
			return err
		}
		defer doneH()
		return FetchThrough(tab, d, dst, -1)
	}
	counts := map[core.Kind]int{}
	for i := range 200 {
		ah, err := func() (int64, error) {
			h, err := NewHost(HostOptions{})
			if err != nil {
				return 0, err
			}
			return tab.Add(h), nil
		}()
		if err != nil {
			t.Fatal(err)
		}
		d, err := abi.Decode(msg, abi.DecOptions{}, true, ah)
		if err != nil {
			t.Fatal(err)
		}
		dh := tab.Add(d)
		dst := abi.Destinations(d.Specs)
		var fetchErr, releaseErr error
		abitest.Within(t, 5*time.Second, "round of fetch and release", func() {
			var wg sync.WaitGroup
			wg.Go(func() { fetchErr = fetch(dh, dst) })
			wg.Go(func() {
				time.Sleep(time.Duration(i%10) * 200 * time.Microsecond) // vary the interleaving
				releaseErr = tab.Release(ah)
			})
			wg.Wait()
		})
		if releaseErr != nil {
			t.Fatalf("round %d: release: %v", i, releaseErr)
		}
		switch k := abi.KindOf(fetchErr); k {
		case core.KindNone:
			if !bytes.Equal(dst[0].Data, payload) {
				t.Fatalf("round %d: fetched bytes differ", i)
			}
		case core.KindInvalid, core.KindAborted:
		default:
			t.Fatalf("round %d: fetch: %v", i, fetchErr)
		}
		counts[abi.KindOf(fetchErr)]++
		if err := tab.Release(dh); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("outcomes by kind: %v", counts)
	if n := tab.Len(); n != 2 { // the source and its transaction
		t.Fatalf("%d handles left, want 2", n)
	}
}

// frozenSource is a loopback server that accepts connections and never
// answers, as a source whose process is stopped: downloads from it hang
// until cancelled.
func frozenSource(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// TestDecodeCancel: Cancel ends a download that would otherwise hang, at
// once, and every later one; the host that downloaded stays usable.
func TestDecodeCancel(t *testing.T) {
	tab := abi.NewTable()
	frozen, _ := addHost(t, tab, HostOptions{Name: "frozen", Advertise: frozenSource(t)})
	agent, _ := addHost(t, tab, HostOptions{Name: "agent"})
	skel, slots, _ := refValue(t)
	msg, _ := publish(t, tab, frozen, skel, slots, PublishOptions{})
	d, err := abi.Decode(msg, abi.DecOptions{}, true, agent)
	if err != nil {
		t.Fatal(err)
	}
	fetched := make(chan error, 1)
	go func() { fetched <- FetchThrough(tab, d, abi.Destinations(d.Specs), -1) }()
	abitest.Within(t, 10*time.Second, "a download cut by Cancel", func() {
		select {
		case err := <-fetched:
			t.Fatalf("the download from a frozen source ended by itself: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		start := time.Now()
		d.Cancel()
		err := <-fetched
		abitest.WantKind(t, "download cut by Cancel", err, core.KindAborted)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("Cancel took %v to end the download", took)
		}
	})
	err = FetchThrough(tab, d, abi.Destinations(d.Specs), -1)
	abitest.WantKind(t, "fetch after Cancel", err, core.KindAborted)
	// The agent still downloads from a source that answers.
	src, _ := addHost(t, tab, HostOptions{Name: "source"})
	msg, _ = publish(t, tab, src, skel, slots, PublishOptions{})
	if _, err := receive(tab, agent, msg); err != nil {
		t.Fatalf("the agent after a cancelled download: %v", err)
	}
}

// TestSkeletonArraysByReference: arrays inside the caller's skeleton may
// go by reference; the batch does not view the skeleton, which the caller
// frees when the call returns.
func TestSkeletonArraysByReference(t *testing.T) {
	tab := abi.NewTable()
	src, _ := addHost(t, tab, HostOptions{Name: "source"})
	agent, _ := addHost(t, tab, HostOptions{Name: "agent"})
	zero := abitest.MustArray(t, core.DTypeFloat64, []int{}, core.RowMajor, []byte{0, 0, 0, 0, 0, 0, 4, 0x40})
	small := abitest.MustArray(t, core.DTypeInt8, []int{3}, core.RowMajor, []byte{1, 2, 3})
	skel := abitest.Skeleton(t, []any{zero, small})
	want, err := core.Marshal([]any{zero, small})
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := publish(t, tab, src, skel, nil, PublishOptions{RefThreshold: 1})
	for i := range skel {
		skel[i] = 0xee // the caller reuses its memory
	}
	mustReceive(t, tab, agent, msg, want)
}

// receiverIDs returns the ids a transaction has recorded, in order.
func receiverIDs(tx *Tx) []string {
	out, _ := tx.Status()
	var ids []string
	for _, r := range out.Receivers {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestPublishNames: a transaction that names its receivers refuses any
// other (KindAuth, the 403 of hostdl) and records nothing of it; the named
// one completes it.
func TestPublishNames(t *testing.T) {
	tab := abi.NewTable()
	src, srcHost := addHost(t, tab, HostOptions{Name: "source"})
	named, _ := addHost(t, tab, HostOptions{Name: "a"})
	other, _ := addHost(t, tab, HostOptions{Name: "b"})
	skel, slots, want := refValue(t)
	msg, th := publish(t, tab, src, skel, slots, PublishOptions{Names: []string{"a"}})
	tx := use[*Tx](t, tab, th)

	_, err := receive(tab, other, msg)
	abitest.WantKind(t, "download by a receiver not named", err, core.KindAuth)
	if out, ended := tx.Status(); ended || out.State != core.StateOpen || len(out.Receivers) != 0 {
		t.Fatalf("after the refused receiver: %+v, ended %v", out, ended)
	}
	if served := srcHost.Stats().BytesServed; served != 0 {
		t.Fatalf("%d bytes served to a receiver not named", served)
	}

	mustReceive(t, tab, named, msg, want)
	// Receivers 0 with names: all of them, here the one.
	out, err := tx.Wait(int64(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if out.State != core.StateCompleted || !slices.Equal(receiverIDs(tx), []string{"a"}) || !slices.Equal(out.Confirmed(), []string{"a"}) {
		t.Fatalf("outcome %+v", out)
	}
}

// TestPublishMaxReceivers: a transaction records at most MaxReceivers
// receivers; one more is refused (KindLimit) and recorded nowhere.
func TestPublishMaxReceivers(t *testing.T) {
	tab := abi.NewTable()
	src, _ := addHost(t, tab, HostOptions{Name: "source"})
	first, _ := addHost(t, tab, HostOptions{Name: "first"})
	second, _ := addHost(t, tab, HostOptions{Name: "second"})
	skel, slots, want := refValue(t)
	msg, th := publish(t, tab, src, skel, slots, PublishOptions{MaxReceivers: 1})
	tx := use[*Tx](t, tab, th)

	mustReceive(t, tab, first, msg, want)
	_, err := receive(tab, second, msg)
	abitest.WantKind(t, "a receiver beyond MaxReceivers", err, core.KindLimit)
	// The first receiver may come back: it is recorded already.
	if _, err := receive(tab, first, msg); err != nil {
		t.Fatalf("the recorded receiver again: %v", err)
	}
	tx.Abort()
	out, err := tx.Wait(-1)
	if err != nil {
		t.Fatal(err)
	}
	if out.State != core.StateAborted || !slices.Equal(receiverIDs(tx), []string{"first"}) {
		t.Fatalf("outcome %+v", out)
	}
}

// TestPublishOptionsRefused: each bad option is KindInvalid with a text
// that names it, and publishes nothing.
func TestPublishOptionsRefused(t *testing.T) {
	tab := abi.NewTable()
	src, _ := addHost(t, tab, HostOptions{Name: "source"})
	h := use[*Host](t, tab, src)
	skel, slots, _ := refValue(t)
	for _, c := range []struct {
		o    PublishOptions
		text string
	}{
		{PublishOptions{MaxReceivers: -1}, "option max_receivers -1 is out of range"},
		{PublishOptions{MaxReceivers: 1 << 40}, "option max_receivers 1099511627776 is out of range"},
		{PublishOptions{Names: []string{}}, "option names is empty: no receiver could download"},
		{PublishOptions{Names: []string{"a", ""}}, `option names[1] "" is not a receiver id (1 to 256 printable ASCII characters)`},
		{PublishOptions{Names: []string{"bad\nid"}}, `option names[0] "bad\nid" is not a receiver id`},
		{PublishOptions{Names: []string{"agent-é"}}, `option names[0] "agent-é" is not a receiver id`},
		{PublishOptions{Names: []string{strings.Repeat("x", 257)}}, "option names[0]"},
		{PublishOptions{Names: []string{"a", "b", "a"}}, `option names[2] "a" repeats names[0]`},
		// core's rules between options
		{PublishOptions{Names: []string{"a"}, Receivers: 2}, "PublishOptions.Receivers 2 is negative or more than the 1 names"},
		{PublishOptions{Receivers: 3, MaxReceivers: 2}, "PublishOptions.MaxReceivers 2 is negative or below Receivers 3"},
	} {
		_, _, err := h.Encode(context.Background(), skel, slots, c.o)
		abitest.WantKind(t, fmt.Sprintf("publish options %+v", c.o), err, core.KindInvalid)
		if text := abi.Text(err); !strings.HasPrefix(text, "viacodec: "+c.text) {
			t.Errorf("options %+v: text %q, want it to start with %q", c.o, text, "viacodec: "+c.text)
		}
	}
	// The longest id there is, and every printable character, are names.
	ok := []string{strings.Repeat("x", 256), " !~agent"}
	_, tx, err := h.Encode(context.Background(), skel, slots, PublishOptions{Names: ok})
	if err != nil {
		t.Fatal(err)
	}
	tx.Close()
	if st := h.Stats(); st.Table.Open != 0 {
		t.Fatalf("%d transactions open", st.Table.Open)
	}
}

// TestHostAllowCleartext: a host without TLS refuses to advertise an
// address that is not loopback unless AllowCleartext is set. (The address
// is a documentation one, never contacted: the host only listens, on
// loopback.)
func TestHostAllowCleartext(t *testing.T) {
	const lan = "http://192.0.2.7:8080"
	_, err := NewHost(HostOptions{Advertise: lan})
	abitest.WantKind(t, "cleartext advertised beyond loopback", err, core.KindInvalid)
	if text := abi.Text(err); !strings.Contains(text, "cleartext") || strings.Contains(text, "hostdl: ") {
		t.Fatalf("text %q", text)
	}
	tab := abi.NewTable()
	_, h := addHost(t, tab, HostOptions{Advertise: lan, AllowCleartext: true})
	if h.Source() != lan {
		t.Fatalf("source %q, want %q", h.Source(), lan)
	}
}

// TestCheckHostOptions: the options a shell checks before it makes its
// host are refused as NewHost refuses them, without listening; a host
// advertises a name with the port it bound and takes its default name
// when it has neither a name nor a certificate.
func TestCheckHostOptions(t *testing.T) {
	for _, c := range []struct {
		o    HostOptions
		want string
	}{
		{HostOptions{Listen: "0.0.0.0:0"}, "cleartext"},
		{HostOptions{Listen: "0.0.0.0:0", AllowCleartext: true}, "an address to advertise"},
		{HostOptions{Advertise: "https://site.example"}, "names no port"},
		{HostOptions{Listen: "127.0.0.1:9-1"}, "ends before it starts"},
		{HostOptions{DefaultName: "a b\n"}, "default receiver id"},
		{HostOptions{Concurrency: -1}, "concurrency"},
	} {
		err := CheckHostOptions(c.o)
		abitest.WantKind(t, c.want, err, core.KindInvalid)
		if text := abi.Text(err); !strings.Contains(text, c.want) || strings.Contains(text, "hostdl: ") {
			t.Errorf("%+v: %q", c.o, text)
		}
	}
	if err := CheckHostOptions(HostOptions{Listen: "0.0.0.0:0", Advertise: "site.example", AllowCleartext: true}); err != nil {
		t.Fatal(err)
	}
	tab := abi.NewTable()
	_, h := addHost(t, tab, HostOptions{Listen: "127.0.0.1:0", Advertise: "localhost", DefaultName: "cell-1"})
	if !regexp.MustCompile(`^http://localhost:[1-9][0-9]*$`).MatchString(h.Source()) || h.Name() != "cell-1" {
		t.Fatalf("source %q name %q", h.Source(), h.Name())
	}
}

// TestPublishByUpload: a host whose batch goes to another host under a
// grant (PublishOptions.Upload): the holder reads it locally, no byte is
// served over the network, and the source's Tx learns the outcome from
// the holder; a grant that is not JSON is refused.
func TestPublishByUpload(t *testing.T) {
	tab := abi.NewTable()
	srv, srvHost := addHost(t, tab, HostOptions{Name: "server"})
	agent, agentHost := addHost(t, tab, HostOptions{Name: "agent"})
	grant, err := srvHost.GrantUpload(8<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	skel, slots, want := refValue(t)
	msg, th := publish(t, tab, agent, skel, slots, PublishOptions{Upload: grant, Receivers: 1})
	tx := use[*Tx](t, tab, th)
	if out, ended := tx.Status(); ended || out.State != core.StateOpen {
		t.Fatalf("before the download: %+v, ended %v", out, ended)
	}
	mustReceive(t, tab, srv, msg, want)
	out, err := tx.Wait(int64(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if out.State != core.StateCompleted || !slices.Equal(out.Confirmed(), []string{"server"}) {
		t.Fatalf("outcome %+v", out)
	}
	if got, ended := tx.Status(); !ended || got.State != core.StateCompleted {
		t.Fatalf("status after the wait: %+v, ended %v", got, ended)
	}
	if served := srvHost.Stats().BytesServed + agentHost.Stats().BytesServed; served != 0 {
		t.Fatalf("%d bytes went over the network: the holder should read its upload locally", served)
	}
	h := use[*Host](t, tab, agent)
	if _, _, err := h.Encode(context.Background(), skel, slots, PublishOptions{Upload: "{not json"}); core.KindOf(err) != core.KindInvalid {
		t.Fatalf("a grant that is not JSON: %v", err)
	}
	if _, err := srvHost.GrantUpload(0, 0); core.KindOf(err) != core.KindInvalid {
		t.Fatalf("a grant of 0 bytes: %v", err)
	}
}

// TestUploadCancelled: the end of Encode's context ends an upload to a
// holder that accepts connections and never answers, with KindAborted,
// long before the upload's own timeouts would.
func TestUploadCancelled(t *testing.T) {
	frozen, err := net.Listen("tcp", "127.0.0.1:0") // the kernel accepts, nobody answers
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Close()
	tab := abi.NewTable()
	_, srvHost := addHost(t, tab, HostOptions{Name: "server"})
	_, h := addHost(t, tab, HostOptions{Name: "agent", NoListen: true})
	g, err := srvHost.GrantUpload(8<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	grant := strings.Replace(g, srvHost.Source(), "http://"+frozen.Addr().String(), 1)
	if grant == g {
		t.Fatalf("grant %s does not name %s", g, srvHost.Source())
	}
	skel, slots, _ := refValue(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	m, tx, err := h.Encode(ctx, skel, slots, PublishOptions{Upload: grant})
	if core.KindOf(err) != core.KindAborted || m != nil || tx != nil {
		t.Fatalf("an upload cancelled after %v: %v, %v, %v; want KindAborted", time.Since(start), m, tx, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the cancelled upload ended after %v", took)
	}
}
