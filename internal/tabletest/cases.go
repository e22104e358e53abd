package tabletest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/viacodec/viacodec/core"
)

// Cases are the cases, from core's table tests: every one that drives a
// table through its API alone.
var Cases = []Case{
	{"round", caseRound},
	{"ranges", caseRanges},
	{"manifest", caseManifest},
	{"status", caseStatus},
	{"timeout", caseTimeout},
	{"quorum", caseQuorum},
	{"unknown receivers", caseUnknownReceivers},
	{"late receiver", caseLateReceiver},
	{"max finished", caseMaxFinished},
	{"abort", caseAbort},
	{"delete", caseDelete},
	{"wait", caseWait},
	{"views released", caseViewsReleased},
	{"on done calls the table", caseOnDoneReentrant},
	{"snapshot", caseSnapshot},
	{"access errors", caseAccessErrors},
	{"refused requests change nothing", caseRefused},
	{"named receivers", caseNamed},
	{"max receivers", caseMaxReceivers},
	{"nonces not evicted", caseNonces},
	{"parallel manifests of one receiver", caseParallelManifests},
	{"receipts need every piece", caseReceiptsNeedPieces},
	{"piece sums", casePieceSums},
	{"hammer", caseHammer},
	{"close", caseClose},
}

// caseRound: two receivers fetch a batch of two items and confirm; the
// transaction completes with both, the stats count every byte.
func caseRound(e *Env) {
	tx := e.Publish(core.PublishOptions{Receivers: 2}, 100, 300)
	e.Stats("published")
	e.Expect("fetch a", e.Fetch(tx.Ref(), "a", 0), core.KindNone)
	e.Open("after a", tx)
	e.Clock.Advance(time.Second)
	e.Expect("fetch b", e.Fetch(tx.Ref(), "b", 0), core.KindNone)
	out := e.Ended("after b", tx, core.StateCompleted)
	if !slices.Equal(out.Confirmed(), []string{"a", "b"}) {
		e.T.Errorf("confirmed %v", out.Confirmed())
	}
	if s := e.Stats("completed"); s.Open != 0 || s.BytesServed != 2*1600 || s.Serves != 4 {
		e.T.Errorf("stats %+v", s)
	}
	<-tx.Done()
}

// caseRanges: an item larger than a range is served in block-aligned
// ranges, each one serve.
func caseRanges(e *Env) {
	tx := e.Publish(core.PublishOptions{Receivers: 1}, (2<<20+512<<10)/4)
	e.Expect("fetch", e.Fetch(tx.Ref(), "a", 1<<20), core.KindNone)
	if s := e.Stats("fetched"); s.Serves != 3 || s.BytesServed != 2<<20+512<<10 {
		e.T.Errorf("stats %+v, want 3 serves", s)
	}
	e.Ended("fetched", tx, core.StateCompleted)
}

// casePieceSums: a table remembers the sums its server was told for the
// rest of a transaction, answers only the batch's token, and forgets
// them with the transaction.
func casePieceSums(e *Env) {
	tx := e.Publish(core.PublishOptions{Receivers: 1}, (2<<20+100)/4, 3)
	ref := tx.Ref()
	if e.Table.PieceSums(ref.RefID, make([]byte, len(ref.Token))) != nil {
		e.T.Error("sums for a wrong token")
	}
	sums := e.Table.PieceSums(ref.RefID, ref.Token[:])
	if _, ok := sums.Get(0, 2); ok {
		e.T.Error("a sum known before any was set")
	}
	sums.Set(0, 2, 0xdeadbeef)
	sums.Set(0, 3, 1) // past item 0's last piece: ignored
	if got, ok := e.Table.PieceSums(ref.RefID, ref.Token[:]).Get(0, 2); !ok || got != 0xdeadbeef {
		e.T.Errorf("piece 2 of item 0: %08x %v, want the sum set", got, ok)
	}
	if _, ok := sums.Get(0, 3); ok {
		e.T.Error("a sum past the item's end")
	}
	if _, ok := sums.Get(1, 0); ok {
		e.T.Error("item 1 has the sum of item 0")
	}
	e.Expect("fetch", e.Fetch(ref, "a", 1<<20), core.KindNone)
	e.Ended("fetched", tx, core.StateCompleted)
	if e.Table.PieceSums(ref.RefID, ref.Token[:]) != nil {
		e.T.Error("sums after the transaction ended")
	}
}

// caseManifest: the manifest describes every item and its piece size
// (the pieces' checksums travel with the bytes).
func caseManifest(e *Env) {
	b := e.Batch(10, (1<<20+8)/4, 0)
	want := core.MarshalManifest(cloneBatch(b).Manifest())
	tx, err := e.Table.Publish(b, core.PublishOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	ref := tx.Ref()
	m, nonce, err := e.Table.Manifest(ref.RefID, ref.Token[:], "a")
	e.Expect("manifest", err, core.KindNone)
	got := core.MarshalManifest(m)
	e.Note("manifest %x, nonce %s", sha256.Sum256(got), nonce)
	if !bytes.Equal(got, want) {
		e.T.Errorf("manifest differs from the batch's own")
	}
	for _, it := range m.Items {
		e.Note("item %d %s %v %s %dB, pieces of %dB", it.ID, it.DType, it.Shape, it.Order, it.Bytes, m.BlockSize)
	}
	tx.Abort()
}

// cloneBatch copies b, so that computing its manifest leaves b as it was.
func cloneBatch(b *core.Batch) *core.Batch {
	c := &core.Batch{Ref: b.Ref, Items: slices.Clone(b.Items)}
	for i := range c.Items {
		c.Items[i].Data = slices.Clone(c.Items[i].Data)
	}
	return c
}

// caseStatus: Status reports each receiver as it goes, in the order they
// first appeared, with its bytes and times.
func caseStatus(e *Env) {
	tx := e.Publish(core.PublishOptions{Receivers: 2, Timeout: time.Minute}, 100)
	ref := tx.Ref()
	e.Status("published", tx)
	e.Clock.Advance(time.Second)
	_, _, err := e.Table.Manifest(ref.RefID, ref.Token[:], "b")
	e.Expect("manifest b", err, core.KindNone)
	e.Clock.Advance(time.Second)
	e.Expect("serve a", second(e.Table.Serve(ref.RefID, ref.Token[:], "a", 0, 8, 16)), core.KindNone)
	e.Clock.Advance(time.Second)
	e.Expect("serve b", second(e.Table.Serve(ref.RefID, ref.Token[:], "b", 0, 0, 400)), core.KindNone)
	s, rs := tx.Status()
	e.Status("two receivers", tx)
	if s != core.StateOpen || len(rs) != 2 || rs[0].ID != "b" || rs[0].Bytes != 400 || rs[1].Bytes != 16 ||
		e.Clock.since(rs[0].FirstSeen) != time.Second || e.Clock.since(rs[0].LastSeen) != 3*time.Second {
		e.T.Errorf("status %v %+v", s, rs)
	}
	e.Expect("fetch a", e.Fetch(ref, "a", 0), core.KindNone)
	e.Stats("one confirmed")
	tx.Abort()
	e.Status("aborted", tx)
	e.Ended("aborted", tx, core.StateAborted)
}

// caseTimeout: a transaction idle for its timeout ends at the sweep that
// finds it so, and OnDone is called once.
func caseTimeout(e *Env) {
	var mu sync.Mutex
	var calls []string
	tx := e.Publish(core.PublishOptions{Receivers: 2, Timeout: time.Minute, OnDone: func(o core.Outcome) {
		mu.Lock()
		calls = append(calls, o.State.String())
		mu.Unlock()
	}}, 100)
	n := e.Table.Sweep(e.Clock.Advance(59 * time.Second))
	e.Note("sweep at 59s: %d", n)
	if n != 0 {
		e.T.Error("ended before its timeout")
	}
	n = e.Table.Sweep(e.Clock.Advance(time.Second))
	e.Note("sweep at 60s: %d", n)
	if n != 1 {
		e.T.Error("did not end at its timeout")
	}
	e.Ended("timed out", tx, core.StateTimedOut)
	e.Table.Sweep(e.Clock.Advance(time.Hour))
	mu.Lock()
	defer mu.Unlock()
	e.Note("OnDone calls %v", calls)
	if !slices.Equal(calls, []string{"timed out"}) {
		e.T.Errorf("OnDone calls %v", calls)
	}
}

// caseQuorum: a transaction that times out with the quorum confirmed ends
// as StateQuorumMet; the receiver that did not confirm failed.
func caseQuorum(e *Env) {
	tx := e.Publish(core.PublishOptions{Receivers: 3, Quorum: 2, Timeout: time.Minute}, 100)
	ref := tx.Ref()
	for _, r := range []string{"a", "b"} {
		e.Expect("fetch "+r, e.Fetch(ref, r, 0), core.KindNone)
	}
	_, _, err := e.Table.Manifest(ref.RefID, ref.Token[:], "c")
	e.Expect("manifest c", err, core.KindNone)
	e.Note("sweep: %d", e.Table.Sweep(e.Clock.Advance(time.Minute)))
	out := e.Ended("swept", tx, core.StateQuorumMet)
	if !slices.Equal(out.Confirmed(), []string{"a", "b"}) || len(out.Receivers) != 3 || out.Receivers[2].State != core.ReceiverFailed {
		e.T.Errorf("outcome %+v", out)
	}
}

// caseUnknownReceivers: with Receivers 0 a transaction ends by timeout
// only, with the quorum of 1 met by one receipt.
func caseUnknownReceivers(e *Env) {
	tx := e.Publish(core.PublishOptions{Timeout: time.Minute}, 100)
	e.Expect("fetch a", e.Fetch(tx.Ref(), "a", 0), core.KindNone)
	e.Open("after a", tx)
	e.Note("sweep: %d", e.Table.Sweep(e.Clock.Advance(time.Minute)))
	e.Ended("swept", tx, core.StateQuorumMet)

	tx = e.Publish(core.PublishOptions{Timeout: time.Minute}, 100)
	e.Note("sweep: %d", e.Table.Sweep(e.Clock.Advance(time.Minute)))
	e.Ended("none confirmed", tx, core.StateTimedOut)
}

// caseLateReceiver: a finished ref answers KindExpired for KeepFinished,
// then KindUnknownRef.
func caseLateReceiver(e *Env) {
	tx := e.Publish(core.PublishOptions{Receivers: 1}, 100)
	ref := tx.Ref()
	e.Expect("fetch a", e.Fetch(ref, "a", 0), core.KindNone)
	e.Ended("fetched", tx, core.StateCompleted)
	e.Expect("late", e.Fetch(ref, "late", 0), core.KindExpired)
	e.Table.Sweep(e.Clock.Advance(KeepFinished - time.Second))
	e.Expect("within KeepFinished", e.Fetch(ref, "later", 0), core.KindExpired)
	e.Table.Sweep(e.Clock.Advance(time.Second))
	e.Expect("after KeepFinished", e.Fetch(ref, "much later", 0), core.KindUnknownRef)
}

// caseMaxFinished: past MaxFinished finished refs, the oldest are
// forgotten first (KindUnknownRef before KeepFinished); an open
// transaction stays open.
func caseMaxFinished(e *Env) {
	open := e.Publish(core.PublishOptions{Receivers: 1}, 100)
	var refs []core.BatchRef
	for range MaxFinished + 2 {
		tx := e.Publish(core.PublishOptions{Receivers: 1}, 100)
		tx.Abort()
		e.Ended("aborted", tx, core.StateAborted)
		refs = append(refs, tx.Ref())
	}
	for i, ref := range refs {
		e.Note("finished ref %d: %v", i, core.KindOf(e.Fetch(ref, "late", 0)))
	}
	e.Expect("oldest", e.Fetch(refs[0], "late", 0), core.KindUnknownRef)
	e.Expect("newest", e.Fetch(refs[len(refs)-1], "late", 0), core.KindExpired)
	e.Expect("open", e.Fetch(open.Ref(), "a", 0), core.KindNone)
	e.Ended("fetched", open, core.StateCompleted)
}

// caseAbort: Abort ends an open transaction, and nothing else.
func caseAbort(e *Env) {
	tx := e.Publish(core.PublishOptions{Receivers: 1}, 100)
	ref := tx.Ref()
	e.Expect("manifest", lastErr(e.Table.Manifest(ref.RefID, ref.Token[:], "a")), core.KindNone)
	tx.Abort()
	out := e.Ended("aborted", tx, core.StateAborted)
	if len(out.Receivers) != 1 || out.Receivers[0].State != core.ReceiverFailed {
		e.T.Errorf("receivers %+v", out.Receivers)
	}
	e.Expect("fetch after abort", e.Fetch(ref, "a", 0), core.KindExpired)
	tx.Abort()
	e.Ended("aborted twice", tx, core.StateAborted)

	done := e.Publish(core.PublishOptions{Receivers: 1}, 100)
	e.Expect("fetch", e.Fetch(done.Ref(), "a", 0), core.KindNone)
	done.Abort()
	e.Ended("abort after completion", done, core.StateCompleted)
}

// caseDelete: Delete ends a transaction by ref id; a finished or unknown
// one is an error.
func caseDelete(e *Env) {
	tx := e.Publish(core.PublishOptions{Receivers: 1}, 100)
	e.Expect("delete", e.Table.Delete(tx.Ref().RefID), core.KindNone)
	e.Ended("deleted", tx, core.StateDeleted)
	e.Expect("delete again", e.Table.Delete(tx.Ref().RefID), core.KindExpired)
	e.Expect("delete unknown", e.Table.Delete(e.Batch(1).Ref.RefID), core.KindUnknownRef)
	e.Stats("deleted")
}

// caseWait: Wait returns the outcome once the transaction has ended, and
// KindTimeout or KindAborted when its context ends first.
func caseWait(e *Env) {
	tx := e.Publish(core.PublishOptions{Receivers: 1}, 100)
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := tx.Wait(ctx)
	e.Expect("wait past a deadline", err, core.KindTimeout)
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = tx.Wait(ctx)
	e.Expect("wait cancelled", err, core.KindAborted)
	got := make(chan core.Outcome, 1)
	go func() {
		out, _ := tx.Wait(context.Background())
		got <- out
	}()
	e.Expect("fetch", e.Fetch(tx.Ref(), "a", 0), core.KindNone)
	out := <-got
	e.Note("waited: %s", e.Outcome(out))
	if out.State != core.StateCompleted {
		e.T.Errorf("wait: %v", out.State)
	}
}

// caseViewsReleased: a transaction that ends while a serve is writing its
// bytes reports its end (Done, Outcome, OnDone) once that serve is
// released, not before.
func caseViewsReleased(e *Env) {
	var mu sync.Mutex
	calls := 0
	tx := e.Publish(core.PublishOptions{Receivers: 1, OnDone: func(core.Outcome) { mu.Lock(); calls++; mu.Unlock() }}, 100)
	ref := tx.Ref()
	data, release, err := e.Table.Serve(ref.RefID, ref.Token[:], "a", 0, 0, 8)
	e.Expect("serve", err, core.KindNone)
	if err != nil {
		return
	}
	e.Note("served %x", data)
	tx.Abort()
	e.Open("aborted during a serve", tx)
	select {
	case <-tx.Done():
		e.T.Error("Done closed during a serve")
	default:
	}
	e.Status("aborted during a serve", tx)
	release()
	release() // twice is harmless
	e.Ended("released", tx, core.StateAborted)
	<-tx.Done()
	mu.Lock()
	defer mu.Unlock()
	e.Note("OnDone calls %d", calls)
	if calls != 1 {
		e.T.Errorf("OnDone called %d times", calls)
	}
}

// caseOnDoneReentrant: OnDone may use the table.
func caseOnDoneReentrant(e *Env) {
	var inner core.Stats
	tx := e.Publish(core.PublishOptions{Receivers: 1, OnDone: func(core.Outcome) { inner = e.Table.Stats() }}, 100)
	e.Expect("fetch", e.Fetch(tx.Ref(), "a", 0), core.KindNone)
	e.Ended("fetched", tx, core.StateCompleted)
	e.Note("stats from OnDone %+v", inner)
	if inner.Serves != 1 {
		e.T.Errorf("stats from OnDone %+v", inner)
	}
}

// caseSnapshot: a snapshot keeps the bytes published, whatever the
// caller does to its arrays after.
func caseSnapshot(e *Env) {
	b := e.Batch(100)
	tx, err := e.Table.Publish(b, core.PublishOptions{Receivers: 1, Snapshot: true})
	if err != nil {
		e.T.Fatal(err)
	}
	b.Items[0].Data[0] ^= 0xff
	e.Expect("fetch", e.Fetch(tx.Ref(), "a", 0), core.KindNone)
}

// caseAccessErrors: requests the table refuses, and why.
func caseAccessErrors(e *Env) {
	b := e.Batch(100)
	tx, err := e.Table.Publish(b, core.PublishOptions{Receivers: 1})
	if err != nil {
		e.T.Fatal(err)
	}
	ref := tx.Ref()
	tok := ref.Token[:]
	bad := bytes.Clone(tok)
	bad[0] ^= 1
	t := e.Table
	unknown := e.Batch(1).Ref.RefID
	for _, c := range []struct {
		name string
		err  error
		kind core.Kind
	}{
		{"wrong token", second(t.Serve(ref.RefID, bad, "a", 0, 0, 4)), core.KindAuth},
		{"short token", second(t.Serve(ref.RefID, tok[:8], "a", 0, 0, 4)), core.KindAuth},
		{"no token", lastErr(t.Manifest(ref.RefID, nil, "a")), core.KindAuth},
		{"no receiver", second(t.Serve(ref.RefID, tok, "", 0, 0, 4)), core.KindInvalid},
		{"unknown ref", second(t.Serve(unknown, tok, "a", 0, 0, 4)), core.KindUnknownRef},
		{"unknown item", second(t.Serve(ref.RefID, tok, "a", 1, 0, 4)), core.KindUnknownRef},
		{"negative item", second(t.Serve(ref.RefID, tok, "a", -1, 0, 4)), core.KindUnknownRef},
		{"range past end", second(t.Serve(ref.RefID, tok, "a", 0, 398, 4)), core.KindInvalid},
		{"negative offset", second(t.Serve(ref.RefID, tok, "a", 0, -1, 4)), core.KindInvalid},
		{"negative length", second(t.Serve(ref.RefID, tok, "a", 0, 0, -1)), core.KindInvalid},
		{"receipt without manifest", t.Confirm(ref.RefID, tok, "b", "00"), core.KindAuth},
		{"receipt with wrong nonce", func() error {
			_, nonce, _ := t.Manifest(ref.RefID, tok, "c")
			return t.Confirm(ref.RefID, tok, "c", nonce[:len(nonce)-1]+"x")
		}(), core.KindAuth},
		{"receipt of unknown ref", t.Confirm(unknown, tok, "a", "00"), core.KindUnknownRef},
		{"publish twice", e.publishErr(b, core.PublishOptions{}), core.KindInvalid},
		{"quorum above receivers", e.publishErr(e.Batch(1), core.PublishOptions{Receivers: 1, Quorum: 2}), core.KindInvalid},
		{"negative timeout", e.publishErr(e.Batch(1), core.PublishOptions{Timeout: -1}), core.KindInvalid},
		{"negative receivers", e.publishErr(e.Batch(1), core.PublishOptions{Receivers: -1}), core.KindInvalid},
		{"nil batch", e.publishErr(nil, core.PublishOptions{}), core.KindInvalid},
	} {
		e.Expect(c.name, c.err, c.kind)
	}
	e.Status("after the refusals", tx)
}

// caseRefused: a request the table refuses records no receiver and is
// no activity: the transaction still times out on time, and its outcome
// lists only the receivers that really asked.
func caseRefused(e *Env) {
	for _, o := range []core.PublishOptions{
		{Receivers: 2, Timeout: time.Minute, MaxReceivers: 2},
		{Names: []string{"a", "b"}, Timeout: time.Minute},
	} {
		tx := e.Publish(o, 100)
		ref := tx.Ref()
		tok := ref.Token[:]
		bad := bytes.Clone(tok)
		bad[0] ^= 1
		e.Expect("fetch a", e.Fetch(ref, "a", 0), core.KindNone)
		_, nonceB, err := e.Table.Manifest(ref.RefID, tok, "b")
		e.Expect("manifest b", err, core.KindNone)
		e.Clock.Advance(59 * time.Second)
		e.Expect("wrong token", second(e.Table.Serve(ref.RefID, bad, "x", 0, 0, 4)), core.KindAuth)
		e.Expect("unknown item", second(e.Table.Serve(ref.RefID, tok, "b", 1, 0, 4)), core.KindUnknownRef)
		e.Expect("range past end", second(e.Table.Serve(ref.RefID, tok, "b", 0, 398, 4)), core.KindInvalid)
		e.Expect("wrong nonce", e.Table.Confirm(ref.RefID, tok, "b", nonceB[:len(nonceB)-1]+"x"), core.KindAuth)
		e.Expect("forged nonce", e.Table.Confirm(ref.RefID, tok, "b", "00"+nonceB[2:]), core.KindAuth)
		want := core.KindLimit
		if o.Names != nil {
			want = core.KindAuth
		}
		for i := range 20 {
			id := fmt.Sprintf("invented-%d", i)
			e.Expect("manifest of "+id, lastErr(e.Table.Manifest(ref.RefID, tok, id)), want)
			e.Expect("receipt of "+id, e.Table.Confirm(ref.RefID, tok, id, nonceB), want)
		}
		n := e.Table.Sweep(e.Clock.Advance(time.Second))
		e.Note("sweep: %d", n)
		if n != 1 {
			e.T.Errorf("%v: refused requests kept the transaction alive", o.Names)
		}
		out := e.Ended("swept", tx, core.StateTimedOut)
		if !slices.Equal(ids(out), []string{"a", "b"}) || out.Receivers[1].State != core.ReceiverFailed {
			e.T.Errorf("%v: receivers %+v", o.Names, out.Receivers)
		}
	}
}

// caseNamed: a publisher that names its receivers lets only them in; the
// transaction completes when all of them (or Receivers of them) confirmed.
func caseNamed(e *Env) {
	tx := e.Publish(core.PublishOptions{Names: []string{"a", "b"}}, 100)
	ref := tx.Ref()
	e.Expect("manifest of relay", lastErr(e.Table.Manifest(ref.RefID, ref.Token[:], "relay")), core.KindAuth)
	e.Expect("serve to relay", second(e.Table.Serve(ref.RefID, ref.Token[:], "relay", 0, 0, 4)), core.KindAuth)
	e.Expect("receipt of relay", e.Table.Confirm(ref.RefID, ref.Token[:], "relay", "00"), core.KindAuth)
	e.Expect("fetch A", e.Fetch(ref, "A", 0), core.KindAuth) // byte for byte
	if e.Status("refused", tx) != "open" {
		e.T.Error("refused receivers recorded")
	}
	for _, id := range []string{"a", "b"} {
		e.Open("before "+id, tx)
		e.Expect("fetch "+id, e.Fetch(ref, id, 0), core.KindNone)
	}
	out := e.Ended("named", tx, core.StateCompleted)
	if !slices.Equal(out.Confirmed(), []string{"a", "b"}) {
		e.T.Errorf("confirmed %v", out.Confirmed())
	}

	tx = e.Publish(core.PublishOptions{Names: []string{"a", "b", "c"}, Receivers: 1}, 100)
	e.Expect("fetch c", e.Fetch(tx.Ref(), "c", 0), core.KindNone)
	e.Ended("one of three", tx, core.StateCompleted)

	tx = e.Publish(core.PublishOptions{Names: []string{}, Receivers: 1}, 100)
	e.Expect("fetch anyone", e.Fetch(tx.Ref(), "anyone", 0), core.KindNone)
	e.Ended("empty names", tx, core.StateCompleted)

	for _, o := range []core.PublishOptions{
		{Names: []string{"a", ""}},
		{Names: []string{"a", "a"}},
		{Names: []string{"a"}, Receivers: 2},
		{Names: []string{"a", "b"}, Quorum: 3},
		{MaxReceivers: -1},
		{Receivers: 5, MaxReceivers: 4},
	} {
		e.Expect(fmt.Sprintf("publish %+v", o), e.publishErr(e.Batch(1), o), core.KindInvalid)
	}
}

// caseMaxReceivers: a transaction records at most MaxReceivers receivers;
// a new one beyond is KindLimit, the known ones go on, and the flood is no
// activity.
func caseMaxReceivers(e *Env) {
	const max = 64
	tx := e.Publish(core.PublishOptions{Timeout: time.Minute, MaxReceivers: max}, 100)
	ref := tx.Ref()
	for i := range max {
		if _, _, err := e.Table.Manifest(ref.RefID, ref.Token[:], fmt.Sprint(i)); err != nil {
			e.T.Fatalf("receiver %d: %v", i, err)
		}
	}
	e.Clock.Advance(30 * time.Second)
	for i := range 500 {
		if _, _, err := e.Table.Manifest(ref.RefID, ref.Token[:], fmt.Sprint("x", i)); core.KindOf(err) != core.KindLimit {
			e.T.Fatalf("receiver %d over the bound: %v, want KindLimit", max+i, err)
		}
	}
	e.Expect("one over", lastErr(e.Table.Manifest(ref.RefID, ref.Token[:], "over")), core.KindLimit)
	if s := e.Stats("flooded"); s.ReceiversActive != max {
		e.T.Errorf("%d receivers active, want %d", s.ReceiversActive, max)
	}
	e.Expect("a known receiver after the flood", e.Fetch(ref, "7", 0), core.KindNone)
	e.Clock.Advance(59 * time.Second)
	if n := e.Table.Sweep(e.Clock.Now()); n != 0 {
		e.T.Error("a known receiver's activity did not count")
	}
	for i := range 100 {
		e.Table.Manifest(ref.RefID, ref.Token[:], fmt.Sprint("y", i))
	}
	n := e.Table.Sweep(e.Clock.Advance(time.Second))
	e.Note("sweep: %d", n)
	if n != 1 {
		e.T.Error("a flood of receivers over the bound kept the transaction alive")
	}
	e.Ended("swept", tx, core.StateQuorumMet)
}

// caseNonces: a receiver's nonce stays good however many manifests are
// asked for; it is good for that receiver and that transaction only.
func caseNonces(e *Env) {
	tx := e.Publish(core.PublishOptions{Receivers: 3}, 100)
	other := e.Publish(core.PublishOptions{Receivers: 1}, 100)
	ref, oref := tx.Ref(), other.Ref()
	_, first, err := e.Table.Manifest(ref.RefID, ref.Token[:], "a")
	e.Expect("first manifest", err, core.KindNone)
	e.Note("first nonce %s", first)
	e.Serve("serve a", ref, "a", "", 0, 0, 400, core.KindNone)
	for range 500 {
		if _, _, err := e.Table.Manifest(ref.RefID, ref.Token[:], "a"); err != nil {
			e.T.Fatal(err)
		}
	}
	_, nb, _ := e.Table.Manifest(ref.RefID, ref.Token[:], "b")
	_, no, _ := e.Table.Manifest(oref.RefID, oref.Token[:], "c")
	e.Note("nonces %s %s", nb, no)
	for _, bad := range []struct{ id, nonce string }{{"a", nb}, {"c", no}, {"b", first}} {
		e.Expect("receipt of "+bad.id+" with another's nonce", e.Table.Confirm(ref.RefID, ref.Token[:], bad.id, bad.nonce), core.KindAuth)
	}
	e.Expect("the first of 501 nonces", e.Table.Confirm(ref.RefID, ref.Token[:], "a", first), core.KindNone)
	e.Expect("a second receipt with it", e.Table.Confirm(ref.RefID, ref.Token[:], "a", first), core.KindNone)
	e.Status("a confirmed", tx)
}

// caseParallelManifests: a receiver gets a fresh nonce per manifest, and
// a receipt with any of them counts.
func caseParallelManifests(e *Env) {
	tx := e.Publish(core.PublishOptions{Receivers: 2}, 100)
	ref := tx.Ref()
	var nonces []string
	for range 17 {
		_, n, err := e.Table.Manifest(ref.RefID, ref.Token[:], "a")
		if err != nil {
			e.T.Fatal(err)
		}
		if slices.Contains(nonces, n) {
			e.T.Fatalf("nonce %s given twice", n)
		}
		nonces = append(nonces, n)
	}
	e.Note("nonces %v", nonces)
	e.Serve("serve a", ref, "a", "", 0, 0, 400, core.KindNone)
	for _, i := range []int{0, 1, 16} {
		e.Expect(fmt.Sprintf("receipt with nonce %d of 17", i), e.Table.Confirm(ref.RefID, ref.Token[:], "a", nonces[i]), core.KindNone)
	}
	if e.Status("confirmed", tx) != "open [a confirmed 400B 0s..0s]" {
		e.T.Error("receivers after the receipts")
	}
}

// caseReceiptsNeedPieces: a receipt counts only for a receiver that was
// served every piece of the batch, in whole pieces over any requests, or
// that a hop forwards which was served every piece (a relay that holds
// them for the receivers behind it). A refused receipt changes nothing.
func caseReceiptsNeedPieces(e *Env) {
	const mib = 1 << 20
	tx := e.Publish(core.PublishOptions{Receivers: 2}, (2*mib+400)/4, 100) // item 0: 3 pieces, item 1: 1
	ref := tx.Ref()
	tok := ref.Token[:]
	nonce := func(id string) string {
		_, n, err := e.Table.Manifest(ref.RefID, tok, id)
		e.Expect("manifest of "+id, err, core.KindNone)
		return n
	}
	zero := nonce("zero")
	before := e.Status("after the manifest of zero", tx)
	e.Expect("receipt of zero, 0 bytes downloaded", e.Table.Confirm(ref.RefID, tok, "zero", zero), core.KindAuth)
	if e.Status("after the receipt of zero", tx) != before {
		e.T.Error("a refused receipt changed the transaction")
	}

	part := nonce("part")
	e.Serve("part: piece 0", ref, "part", "", 0, 0, mib, core.KindNone)
	e.Serve("part: piece 2, the last", ref, "part", "", 0, 2*mib, 400, core.KindNone)
	e.Serve("part: item 1", ref, "part", "", 1, 0, 400, core.KindNone)
	e.Serve("part: piece 1 but its first byte", ref, "part", "", 0, mib+1, mib-1, core.KindNone)
	e.Serve("part: piece 0 again", ref, "part", "", 0, 0, mib, core.KindNone)
	e.Expect("receipt of part, piece 1 missing", e.Table.Confirm(ref.RefID, tok, "part", part), core.KindAuth)

	// A relay fetches each piece once, under the first receiver that asked,
	// and says it is the hop; receivers behind it confirm through it.
	first, behind := nonce("first"), nonce("behind")
	e.Serve("relay: item 0 for first", ref, "first", "relay", 0, 0, 2*mib+400, core.KindNone)
	e.Serve("half relay: piece 0 for first", ref, "first", "half", 0, 0, mib, core.KindNone)
	e.Expect("receipt of behind, not through the relay", e.Table.Confirm(ref.RefID, tok, "behind", behind), core.KindAuth)
	e.Expect("receipt of behind through the relay before item 1", e.Table.ConfirmVia(ref.RefID, tok, "behind", "relay", behind), core.KindAuth)
	e.Serve("relay: item 1 for first", ref, "first", "relay", 1, 0, 400, core.KindNone)
	e.Expect("receipt of behind through a hop that fetched a piece", e.Table.ConfirmVia(ref.RefID, tok, "behind", "half", behind), core.KindAuth)
	e.Expect("receipt of behind through a hop that fetched nothing", e.Table.ConfirmVia(ref.RefID, tok, "behind", "idle", behind), core.KindAuth)
	e.Serve("a hop id that is no id", ref, "first", "bad\x00hop", 1, 0, 4, core.KindInvalid)
	e.Expect("receipt of behind through the relay", e.Table.ConfirmVia(ref.RefID, tok, "behind", "relay", behind), core.KindNone)
	e.Expect("receipt of first, whom the relay's ranges served", e.Table.Confirm(ref.RefID, tok, "first", first), core.KindNone)
	e.Ended("first and behind", tx, core.StateCompleted)
	e.Status("zero and part never confirmed", tx)

	// A batch with no bytes has no pieces: its receipt needs none.
	empty := e.Publish(core.PublishOptions{Receivers: 1}, 0)
	eref := empty.Ref()
	_, n, err := e.Table.Manifest(eref.RefID, eref.Token[:], "a")
	e.Expect("manifest of an empty batch", err, core.KindNone)
	e.Expect("receipt of an empty batch", e.Table.Confirm(eref.RefID, eref.Token[:], "a", n), core.KindNone)
	e.Ended("empty", empty, core.StateCompleted)
}

// caseHammer: rounds on one table at once, each with two receivers.
func caseHammer(e *Env) {
	const rounds = 16
	txs := make([]Tx, rounds)
	for g := range txs {
		txs[g] = e.Publish(core.PublishOptions{Receivers: 2}, 100+g)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds)
	for g, tx := range txs {
		for r := range 2 {
			wg.Go(func() {
				if err := e.Fetch(tx.Ref(), fmt.Sprintf("agent-%d-%d", g, r), 0); err != nil {
					errs <- fmt.Errorf("round %d: %w", g, err)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.T.Error(err)
	}
	for g, tx := range txs {
		out, err := tx.Wait(context.Background())
		if err != nil || out.State != core.StateCompleted || len(out.Confirmed()) != 2 {
			e.T.Errorf("round %d: outcome %+v, %v", g, out, err)
		}
	}
	e.Stats("after the rounds")
}

// caseClose: Close ends every open transaction with StateDeleted.
func caseClose(e *Env) {
	a := e.Publish(core.PublishOptions{Receivers: 1}, 100)
	b := e.Publish(core.PublishOptions{}, 100)
	done := e.Publish(core.PublishOptions{Receivers: 1}, 100)
	e.Expect("fetch", e.Fetch(done.Ref(), "a", 0), core.KindNone)
	e.Stats("before close")
	e.Table.Close()
	e.Ended("a", a, core.StateDeleted)
	e.Ended("b", b, core.StateDeleted)
	e.Ended("completed before", done, core.StateCompleted)
}
