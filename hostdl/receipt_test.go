package hostdl

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/viacodec/viacodec/core"
)

// fetchRaw asks for every byte of ref's single item of size bytes as
// receiver, through hop when it is not "", in ranges of 1 MiB.
func fetchRaw(t *testing.T, srv *Server, ref core.BatchRef, receiver, hop string, size int) {
	fetchWith(t, http.DefaultClient, srv, ref, receiver, hop, size)
}

// fetchWith is fetchRaw through hc.
func fetchWith(t *testing.T, hc *http.Client, srv *Server, ref core.BatchRef, receiver, hop string, size int) {
	t.Helper()
	hdr := map[string]string{"Authorization": bearer(ref), headerReceiver: receiver}
	if hop != "" {
		hdr[headerVia] = hop
	}
	for off := 0; off < size; off += 1 << 20 {
		hdr["Range"] = fmt.Sprintf("bytes=%d-%d", off, min(off+1<<20, size)-1)
		if code, body, _ := doWith(t, hc, "GET", batchURL(srv, ref, "items/0"), hdr); code != http.StatusPartialContent {
			t.Fatalf("range at %d for %s via %q: %d %s", off, receiver, hop, code, body)
		}
	}
}

// manifestRaw fetches ref's manifest as receiver and returns its nonce.
func manifestRaw(t *testing.T, srv *Server, ref core.BatchRef, receiver string) string {
	t.Helper()
	return manifestWith(t, http.DefaultClient, srv, ref, receiver)
}

// manifestWith is manifestRaw through hc.
func manifestWith(t *testing.T, hc *http.Client, srv *Server, ref core.BatchRef, receiver string) string {
	t.Helper()
	code, body, h := doWith(t, hc, "GET", batchURL(srv, ref, "manifest"), map[string]string{"Authorization": bearer(ref), headerReceiver: receiver})
	if code != http.StatusOK {
		t.Fatalf("manifest of %s: %d %s", receiver, code, body)
	}
	return h.Get(headerNonce)
}

// receiptRaw posts receiver's receipt with nonce, through hop when it is
// not "", and returns the status and the error kind.
func receiptRaw(t *testing.T, srv *Server, ref core.BatchRef, receiver, hop, nonce string) (int, string) {
	t.Helper()
	return receiptWith(t, http.DefaultClient, srv, ref, receiver, hop, nonce)
}

// receiptWith is receiptRaw through hc.
func receiptWith(t *testing.T, hc *http.Client, srv *Server, ref core.BatchRef, receiver, hop, nonce string) (int, string) {
	t.Helper()
	hdr := map[string]string{"Authorization": bearer(ref), headerReceiver: receiver, headerNonce: nonce}
	if hop != "" {
		hdr[headerVia] = hop
	}
	code, _, h := doWith(t, hc, "POST", batchURL(srv, ref, "receipt"), hdr)
	return code, h.Get(headerKind)
}

// TestZeroByteReceipt: a token holder that fetches a manifest under a
// fresh id and confirms with nothing downloaded is refused (403, auth)
// and the transaction stays open, its receiver not confirmed; as soon as
// the same id downloaded every piece its receipt counts.
func TestZeroByteReceipt(t *testing.T) {
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	const size = 3<<20 + 12
	_, tx := publish(t, table, srv.Source(), newModel(size, 1, 7).body(), core.PublishOptions{Receivers: 1})
	ref := tx.Ref()
	nonce := manifestRaw(t, srv, ref, "fresh")
	if code, kind := receiptRaw(t, srv, ref, "fresh", "", nonce); code != http.StatusForbidden || kind != "auth" {
		t.Fatalf("0-byte receipt: %d %q, want 403 auth", code, kind)
	}
	if st, rs := tx.Status(); st != core.StateOpen || len(rs) != 1 || rs[0].State != core.ReceiverStarted {
		t.Fatalf("after the refused receipt: %v %+v", st, rs)
	}
	fetchRaw(t, srv, ref, "fresh", "", size)
	if code, kind := receiptRaw(t, srv, ref, "fresh", "", nonce); code != http.StatusNoContent {
		t.Fatalf("receipt after every piece: %d %q", code, kind)
	}
	if out, done := tx.Outcome(); !done || out.State != core.StateCompleted {
		t.Fatalf("outcome %+v, done %v", out, done)
	}
}

// TestHopReceipts: a hop (Viacodec-Via) that was served every piece
// forwards the receipts of receivers it did not fetch under; a hop that
// was served part of the batch, or nothing, cannot confirm for anyone
// (403, auth, and nothing changes), and no hop counts as a receiver.
func TestHopReceipts(t *testing.T) {
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	const size = 2<<20 + 8
	_, tx := publish(t, table, srv.Source(), newModel(size, 1, 8).body(), core.PublishOptions{Receivers: 2})
	ref := tx.Ref()
	a, b := manifestRaw(t, srv, ref, "a"), manifestRaw(t, srv, ref, "b")
	// "half" fetches the first piece only; "idle" nothing at all.
	hdr := map[string]string{"Authorization": bearer(ref), headerReceiver: "a", headerVia: "half", "Range": "bytes=0-1048575"}
	if code, _, _ := doWith(t, http.DefaultClient, "GET", batchURL(srv, ref, "items/0"), hdr); code != http.StatusPartialContent {
		t.Fatalf("half's range: %d", code)
	}
	for _, hop := range []string{"", "half", "idle"} {
		if code, kind := receiptRaw(t, srv, ref, "b", hop, b); code != http.StatusForbidden || kind != "auth" {
			t.Errorf("receipt of b through %q: %d %q, want 403 auth", hop, code, kind)
		}
	}
	if _, rs := tx.Status(); slices.ContainsFunc(rs, func(r core.ReceiverStatus) bool { return r.State != core.ReceiverStarted }) {
		t.Fatalf("refused receipts changed the receivers: %+v", rs)
	}
	fetchRaw(t, srv, ref, "a", "relay", size) // a relay fetches each piece under the first receiver that asked
	if code, kind := receiptRaw(t, srv, ref, "b", "relay", b); code != http.StatusNoContent {
		t.Fatalf("receipt of b through the relay: %d %q", code, kind)
	}
	if code, kind := receiptRaw(t, srv, ref, "a", "", a); code != http.StatusNoContent {
		t.Fatalf("receipt of a: %d %q", code, kind)
	}
	out, done := tx.Outcome()
	if !done || out.State != core.StateCompleted || !slices.Equal(out.Confirmed(), []string{"a", "b"}) {
		t.Fatalf("outcome %+v, done %v", out, done)
	}
	for _, r := range out.Receivers {
		if r.ID == "relay" || r.ID == "half" || r.ID == "idle" {
			t.Errorf("a hop counts as a receiver: %+v", r)
		}
	}
}

// TestHopReceiptsMutualTLS: under mutual TLS the Viacodec-Via header is
// not taken: a named receiver that downloaded nothing cannot confirm by
// naming a hop that downloaded everything.
func TestHopReceiptsMutualTLS(t *testing.T) {
	pki := newPKI(t, "via")
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{TLSFiles: TLSFiles{CertFile: pki.serverCert, KeyFile: pki.serverKey, CAFile: pki.caFile}})
	const size = 1<<20 + 4
	_, tx := publish(t, table, srv.Source(), newModel(size, 1, 10).body(), core.PublishOptions{Receivers: 1})
	ref := tx.Ref()
	client := func(cn string) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: pki.clientConfig(cn)}}
	}
	relay, agent := client("relay"), client("agent")
	manifestWith(t, relay, srv, ref, "relay")
	fetchWith(t, relay, srv, ref, "relay", "relay", size)
	nonce := manifestWith(t, agent, srv, ref, "agent")
	if code, kind := receiptWith(t, agent, srv, ref, "agent", "relay", nonce); code != http.StatusForbidden || kind != "auth" {
		t.Fatalf("agent's receipt naming the relay as its hop: %d %q, want 403 auth", code, kind)
	}
	if _, done := tx.Outcome(); done {
		t.Fatal("the transaction ended")
	}
	fetchWith(t, agent, srv, ref, "agent", "", size)
	if code, kind := receiptWith(t, agent, srv, ref, "agent", "", nonce); code != http.StatusNoContent {
		t.Fatalf("agent's receipt after its own download: %d %q", code, kind)
	}
}

// TestRelayRefusesUnservedReceipt: a receiver behind a caching relay that
// fetched the manifest there and nothing else has its receipt refused by
// the relay (403, auth), which forwards nothing: the origin records it as
// started, not confirmed, even though the relay holds every piece.
func TestRelayRefusesUnservedReceipt(t *testing.T) {
	table := newTable(t)
	origin := startServer(t, table, ServerOptions{})
	mdl := newModel(4<<20, 2, 9)
	msg, tx := publish(t, table, origin.Source(), mdl.body(), core.PublishOptions{Receivers: 2})
	relay := startRelay(t, RelayOptions{})
	held, err := relay.Forward(msg)
	if err != nil {
		t.Fatal(err)
	}
	if errs := decodeAll(t, held, 1, mdl, ClientOptions{}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	ref := tx.Ref()
	nonce := manifestRaw(t, relay.Server(), ref, "idle")
	if code, kind := receiptRaw(t, relay.Server(), ref, "idle", "", nonce); code != http.StatusForbidden || kind != "auth" {
		t.Fatalf("receipt of idle at the relay: %d %q, want 403 auth", code, kind)
	}
	_, rs := tx.Status()
	i := slices.IndexFunc(rs, func(r core.ReceiverStatus) bool { return r.ID == "idle" })
	if i < 0 || rs[i].State != core.ReceiverStarted {
		t.Fatalf("origin's receivers %+v, want idle started", rs)
	}
	if _, done := tx.Outcome(); done {
		t.Fatal("the transaction ended")
	}
}
