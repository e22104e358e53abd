package hostdl

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
)

// timedDecode decodes msg with c, checks that it holds mdl, and returns
// how long that took.
func timedDecode(t *testing.T, c *Client, msg []byte, mdl *model) time.Duration {
	t.Helper()
	start := time.Now()
	v, err := decoder(t, c).Decode(msg)
	if err != nil {
		t.Fatalf("receiver %s: %v", c.Receiver(), err)
	}
	if err := mdl.check(v); err != nil {
		t.Fatalf("receiver %s: %v", c.Receiver(), err)
	}
	return time.Since(start)
}

// withinNormal fails the test when a legitimate download under attack
// took far longer than the same download without it.
func withinNormal(t *testing.T, what string, d, baseline time.Duration) {
	t.Helper()
	if limit := 3*baseline + 3*time.Second; d > limit {
		t.Errorf("%s took %v under attack, %v without (limit %v)", what, d, baseline, limit)
	}
}

// receiverIDs returns the ids of a transaction's receivers so far.
func receiverIDs(tx *core.Transaction) []string {
	_, rs := tx.Status()
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestInventedReceiverRefused (a receipt is not proof of delivery, without
// mutual TLS): when the publisher names its receivers, a token holder that
// invents a receiver id gets 403 KindAuth for the manifest and the
// receipt, the transaction does not record it, and the named receivers
// complete in their normal time.
func TestInventedReceiverRefused(t *testing.T) {
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	mdl := newModel(4<<20, 2, 30)
	msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{Names: []string{"agent-1"}})
	baseline := timedDecode(t, newTestClient(t, ClientOptions{Receiver: "agent-1"}), msg, mdl)

	msg, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{Names: []string{"agent-1", "agent-2"}})
	ref := tx.Ref()
	hdr := map[string]string{"Authorization": bearer(ref), headerReceiver: "fake", headerNonce: strings.Repeat("0", 48)}
	for _, path := range []string{"manifest", "receipt", "items/0"} {
		method := http.MethodGet
		if path == "receipt" {
			method = http.MethodPost
		}
		hdr["Range"] = "bytes=0-1023"
		code, body, _ := rawDo(t, method, batchURL(srv, ref, path), hdr)
		if code != http.StatusForbidden || errKind(t, body) != "auth" {
			t.Errorf("%s by an invented receiver: %d %s", path, code, body)
		}
	}
	_, err := decoder(t, newTestClient(t, ClientOptions{Receiver: "fake", Retries: -1})).Decode(msg)
	wantKind(t, err, core.KindAuth)
	if ids := receiverIDs(tx); len(ids) != 0 {
		t.Fatalf("refused receivers recorded: %v", ids)
	}
	for _, id := range []string{"agent-1", "agent-2"} {
		withinNormal(t, id, timedDecode(t, newTestClient(t, ClientOptions{Receiver: id}), msg, mdl), baseline)
	}
	out, err := tx.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if out.State != core.StateCompleted || !slices.Equal(out.Confirmed(), []string{"agent-1", "agent-2"}) {
		t.Errorf("outcome %v, confirmed %v", out.State, out.Confirmed())
	}
}

// TestRelayCannotConfirm (a receipt is not proof of delivery, under mutual
// TLS): the receiver id is the verified client certificate's Subject CN. A
// relay holds the token and a certificate of the same CA, yet it can
// neither fetch nor confirm, under its own id or the agent's, even with a
// real nonce of the agent's; a receiver claiming an id that is not its
// certificate's is refused too. The agent completes in its normal time.
func TestRelayCannotConfirm(t *testing.T) {
	pki := newPKI(t, "relay")
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{TLSFiles: TLSFiles{CertFile: pki.serverCert, KeyFile: pki.serverKey, CAFile: pki.caFile}})
	agentTLS, relayTLS := pki.clientConfig("agent"), pki.clientConfig("relay")
	agent := newTestClient(t, ClientOptions{TLS: agentTLS})
	if agent.Receiver() != "agent" {
		t.Fatalf("a client's default receiver id is %q, not its certificate's CN", agent.Receiver())
	}
	mdl := newModel(4<<20, 2, 31)
	msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{Names: []string{"agent"}})
	baseline := timedDecode(t, agent, msg, mdl)

	msg, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{Names: []string{"agent"}})
	ref := tx.Ref()
	agentHC := &http.Client{Transport: &http.Transport{TLSClientConfig: agentTLS}}
	relayHC := &http.Client{Transport: &http.Transport{TLSClientConfig: relayTLS}}
	defer agentHC.CloseIdleConnections()
	defer relayHC.CloseIdleConnections()
	code, _, h := doWith(t, agentHC, "GET", batchURL(srv, ref, "manifest"), map[string]string{"Authorization": bearer(ref), headerReceiver: "agent"})
	nonce := h.Get(headerNonce)
	if code != http.StatusOK || nonce == "" {
		t.Fatalf("the agent's manifest: %d", code)
	}
	for _, claim := range []string{"", "agent", "relay"} {
		hdr := map[string]string{"Authorization": bearer(ref), headerNonce: nonce}
		if claim != "" {
			hdr[headerReceiver] = claim
		}
		for _, req := range []struct{ method, path string }{{"GET", "manifest"}, {"POST", "receipt"}} {
			code, body, _ := doWith(t, relayHC, req.method, batchURL(srv, ref, req.path), hdr)
			if code != http.StatusForbidden || errKind(t, body) != "auth" {
				t.Errorf("relay %s claiming %q: %d %s", req.path, claim, code, body)
			}
		}
	}
	for _, claim := range []string{"", "agent"} {
		_, err := decoder(t, newTestClient(t, ClientOptions{TLS: relayTLS, Receiver: claim, Retries: -1})).Decode(msg)
		wantKind(t, err, core.KindAuth)
	}
	_, err := decoder(t, newTestClient(t, ClientOptions{TLS: agentTLS, Receiver: "agent-x", Retries: -1})).Decode(msg)
	wantKind(t, err, core.KindAuth)
	if _, done := tx.Outcome(); done {
		t.Fatal("the transaction ended before the agent's receipt")
	}
	// HTTP/2 over TLS carries the same identity.
	h2 := newTestClient(t, ClientOptions{TLS: relayTLS, Protocol: HTTP2, Receiver: "agent", Retries: -1})
	wantKind(t, h2.Fetch(t.Context(), ref, nil), core.KindAuth)
	withinNormal(t, "the agent", timedDecode(t, agent, msg, mdl), baseline)
	out, err := tx.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ids := receiverIDs(tx); out.State != core.StateCompleted || !slices.Equal(ids, []string{"agent"}) {
		t.Errorf("outcome %v, receivers %v; want completed by the agent alone", out.State, ids)
	}
}
