package hostdl

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/syncbuf"
)

// TestLogsNeverHoldToken captures every log record, at Debug, of servers
// and clients through a download, retries after corruption and a cut
// connection, a wrong token, a missing one and an expired ref, and checks
// that no token appears in them in any spelling.
func TestLogsNeverHoldToken(t *testing.T) {
	var sink syncbuf.Buffer
	text := slog.New(slog.NewTextHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	jsonl := slog.New(slog.NewJSONHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug}))

	wrap, _ := breaking(2, 1, true, false)
	table := newTable(t)
	srv, err := newServer(table, ServerOptions{Logger: text}, wrap)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	proxy := newCutProxy(t, srv.Addr().String(), 3<<20, false)
	mdl := newModel(8<<20, 2, 21)
	var tokens []core.BatchRef

	// A download from the corrupting server (its second range is
	// corrupted), then one through the cutting proxy on one connection at a
	// time, which a 2 MiB range crosses the proxy's 3 MiB cut in. Apart,
	// each is sure to happen: when one download met both, a cut could end
	// the corrupted range before its bad piece, or no connection reach 3 MiB.
	c := newTestClient(t, ClientOptions{Logger: jsonl, ChunkSize: 2 << 20, BackoffMin: time.Millisecond})
	one := newTestClient(t, ClientOptions{Logger: jsonl, ChunkSize: 2 << 20, BackoffMin: time.Millisecond, Concurrency: 1})
	for _, d := range []struct {
		source string
		c      *Client
	}{{srv.Source(), c}, {proxy.url(), one}} {
		msg, tx := publish(t, table, d.source, mdl.body(), core.PublishOptions{Receivers: 1})
		tokens = append(tokens, tx.Ref())
		v, err := decoder(t, d.c).Decode(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := mdl.check(v); err != nil {
			t.Fatal(err)
		}
	}

	// A wrong token, a missing one, an expired ref.
	msg2, tx2 := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	ref := tx2.Ref()
	tokens = append(tokens, ref)
	wrong := ref
	wrong.Token[3] ^= 0xff
	tokens = append(tokens, wrong)
	wantKind(t, c.Fetch(context.Background(), wrong, nil), core.KindAuth)
	rawDo(t, "GET", batchURL(srv, ref, "manifest"), map[string]string{headerReceiver: "x"})
	rawDo(t, "GET", batchURL(srv, ref, "manifest"), map[string]string{headerReceiver: "x", "Authorization": "Bearer " + hex.EncodeToString(ref.Token[:])[:40]})
	tx2.Abort()
	_, err = decoder(t, c).Decode(msg2)
	wantKind(t, err, core.KindExpired)
	srv.Shutdown(context.Background())

	logs := sink.String()
	for _, want := range []string{"hostdl: request", "hostdl: retrying range", "hostdl: checksum mismatch", "hostdl: receipt", "status=401", "status=403", "status=410"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %q", want)
		}
	}
	for _, ref := range tokens {
		tok := ref.Token[:]
		h := hex.EncodeToString(tok)
		for _, s := range []string{h, strings.ToUpper(h), h[:16], base64.StdEncoding.EncodeToString(tok), base64.RawURLEncoding.EncodeToString(tok)} {
			if strings.Contains(logs, s) {
				t.Fatalf("a token appears in the logs (%q)", s)
			}
		}
		if bytes.Contains([]byte(logs), tok) {
			t.Fatal("raw token bytes appear in the logs")
		}
	}
	if regexp.MustCompile(`(?i)bearer\s+[0-9a-f]{8}`).MatchString(logs) {
		t.Error("an Authorization value appears in the logs")
	}
}
