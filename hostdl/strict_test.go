package hostdl

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/syncbuf"
)

// rawRequest writes a request verbatim on a new connection and returns the
// status and the error kind of the answer.
func rawRequest(t *testing.T, srv *Server, req string) (int, string) {
	t.Helper()
	c := dialFrom(t, srv.Addr().String(), "127.0.0.1")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.60q: %v", req, err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(headerKind)
}

// TestStrictRequests (the smaller things): a path in any form but the
// canonical one is 404, never a redirect; item ids are plain decimals and
// ref ids 8-4-4-4-12 UUIDs; a request for another host is 421; a body is
// refused. A legitimate receiver is not affected.
func TestStrictRequests(t *testing.T) {
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{})
	mdl := newModel(2<<20, 1, 40)
	msg, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	baseline := timedDecode(t, newTestClient(t, ClientOptions{}), msg, mdl)
	ref := tx.Ref()
	id := ref.RefID.String()
	hdr := fmt.Sprintf("Viacodec-Protocol: 2\r\nAuthorization: %s\r\n%s: r\r\nRange: bytes=0-9\r\n", bearer(ref), headerReceiver)
	get := func(target, host string) string {
		return fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, host, hdr)
	}
	local := srv.Addr().String()
	port := srv.Addr().(*net.TCPAddr).Port
	cases := []struct {
		name, req string
		code      int
		kind      string
	}{
		{"canonical", get("/v1/batches/"+id+"/items/0", local), 206, ""},
		{"localhost", get("/v1/batches/"+id+"/items/0", fmt.Sprint("localhost:", port)), 206, ""},
		{"another port", get("/v1/batches/"+id+"/items/0", "127.0.0.1:1"), 206, ""},
		{"dot segment", get("/v1/batches/"+id+"/./items/0", local), 404, "protocol"},
		{"dot-dot", get("/v1/batches/x/../"+id+"/items/0", local), 404, "protocol"},
		{"double slash", get("/v1//batches/"+id+"/items/0", local), 404, "protocol"},
		{"trailing slash", get("/v1/batches/"+id+"/items/0/", local), 404, "protocol"},
		{"escaped", get("/v1/batches/"+id+"/items/%30", local), 404, "protocol"},
		{"metrics dot-dot", get("/v1/../metrics", local), 404, "protocol"},
		{"item +0", get("/v1/batches/"+id+"/items/+0", local), 404, "unknown ref"},
		{"item -0", get("/v1/batches/"+id+"/items/-0", local), 404, "unknown ref"},
		{"item 00", get("/v1/batches/"+id+"/items/00", local), 404, "unknown ref"},
		{"item 0x0", get("/v1/batches/"+id+"/items/0x0", local), 404, "unknown ref"},
		{"item 2^31", get("/v1/batches/"+id+"/items/2147483648", local), 404, "unknown ref"},
		{"ref without dashes", get("/v1/batches/"+strings.ReplaceAll(id, "-", "")+"/items/0", local), 404, "unknown ref"},
		{"ref in braces", get("/v1/batches/{"+id+"}/items/0", local), 404, "protocol"}, // not a canonical path
		{"ref as URN", get("/v1/batches/urn:uuid:"+id+"/items/0", local), 404, "unknown ref"},
		{"another host", get("/v1/batches/"+id+"/items/0", "example.com"), 421, "protocol"},
		{"absolute form, another host", get("http://example.com/v1/batches/"+id+"/items/0", local), 421, "protocol"},
		{"absolute form, this host", get("http://"+local+"/v1/batches/"+id+"/items/0", local), 206, ""},
		{"metrics for another host", get("/metrics", "example.com"), 421, "protocol"},
		{"a body", fmt.Sprintf("POST /v1/batches/%s/receipt HTTP/1.1\r\nHost: %s\r\n%sContent-Length: 100000\r\n\r\nxx", id, local, hdr), 400, "protocol"},
		{"OPTIONS *", fmt.Sprintf("OPTIONS * HTTP/1.1\r\nHost: %s\r\n\r\n", local), 404, "protocol"},
		{"two receiver ids", fmt.Sprintf("GET /v1/batches/%s/manifest HTTP/1.1\r\nHost: %s\r\n%s%s: s\r\n\r\n", id, local, hdr, headerReceiver), 400, "invalid"},
	}
	for _, tc := range cases {
		code, kind := rawRequest(t, srv, tc.req)
		if code != tc.code || kind != tc.kind {
			t.Errorf("%s: %d %q, want %d %q", tc.name, code, kind, tc.code, tc.kind)
		}
	}
	withinNormal(t, "a receiver after the probes", timedDecode(t, newTestClient(t, ClientOptions{}), msg, mdl), baseline)

	// Hosts and Advertise name more hosts.
	srv2 := startServer(t, table, ServerOptions{Advertise: "http://localhost:1", Hosts: []string{"Source.Example."}})
	for host, want := range map[string]int{"source.example:80": 404, "SOURCE.EXAMPLE": 404, "localhost": 404, "other.example": 421} {
		if code, _ := rawRequest(t, srv2, get("/nothing", host)); code != want {
			t.Errorf("Host %s: %d, want %d", host, code, want)
		}
	}
}

// TestCleartextBeyondLoopback: a server without TLS refuses to listen on,
// or advertise, an address that is not loopback, unless AllowCleartext
// says so; then it warns in the log.
func TestCleartextBeyondLoopback(t *testing.T) {
	table := newTable(t)
	for _, o := range []ServerOptions{
		{Addr: "0.0.0.0:0"},
		{Advertise: "http://192.0.2.1:8470"},
	} {
		o.Logger = quiet
		if s, err := NewServer(table, o); err == nil {
			s.Close()
			t.Errorf("%+v: a cleartext server beyond loopback started", o)
		} else if !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "configure TLS, or allow cleartext") {
			t.Errorf("%+v: %v", o, err)
		}
	}
	var sink syncbuf.Buffer
	s, err := NewServer(table, ServerOptions{Addr: "0.0.0.0:0", Advertise: "127.0.0.1", AllowCleartext: true,
		Logger: slog.New(slog.NewTextHandler(&sink, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !strings.Contains(sink.String(), "level=WARN") || !strings.Contains(sink.String(), "cleartext") {
		t.Errorf("no warning in the log: %s", sink.String())
	}
	// On loopback, or with TLS, no option is needed.
	pki := newPKI(t, "clear")
	for _, o := range []ServerOptions{{}, {Addr: "127.0.0.1:0", Advertise: "http://localhost:1"},
		{Addr: "0.0.0.0:0", Advertise: "site.example", TLS: &tls.Config{Certificates: []tls.Certificate{pki.server}}}} {
		o.Logger = quiet
		s, err := NewServer(table, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		s.Close()
	}
}

// TestTLSFloor: every TLS config, a caller's too, is held to TLS 1.2 or
// later: a server whose config allows TLS 1.0 refuses a TLS 1.1 client, a
// client whose config allows TLS 1.0 refuses a TLS 1.1 server, and a
// config that allows nothing newer than 1.1 is an error.
func TestTLSFloor(t *testing.T) {
	pki := newPKI(t, "floor")
	table := newTable(t)
	srv := startServer(t, table, ServerOptions{TLS: &tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS10}})
	old := &tls.Config{RootCAs: pki.caPool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if c, err := tls.Dial("tcp", srv.Addr().String(), old); err == nil {
		c.Close()
		t.Error("a TLS 1.1 client was served")
	}
	mdl := newModel(1<<20, 1, 41)
	msg, _ := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{})
	timedDecode(t, newTestClient(t, ClientOptions{TLS: &tls.Config{RootCAs: pki.caPool, MinVersion: tls.VersionTLS10}}), msg, mdl)

	// A TLS 1.1 server, on a raw listener.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c := newTestClient(t, ClientOptions{TLS: &tls.Config{RootCAs: pki.caPool, MinVersion: tls.VersionTLS10}, Retries: -1})
	ref := core.BatchRef{Source: "https://" + ln.Addr().String()}
	if err := c.Fetch(t.Context(), ref, nil); core.KindOf(err) == core.KindUnavailable || err == nil {
		t.Errorf("a client holding TLS 1.0 as allowed talked to a TLS 1.1 server: %v", err)
	}

	if s, err := NewServer(table, ServerOptions{Logger: quiet, TLS: &tls.Config{Certificates: []tls.Certificate{pki.server}, MaxVersion: tls.VersionTLS11}}); err == nil {
		s.Close()
		t.Error("a server limited to TLS 1.1 started")
	}
	if _, err := NewClient(ClientOptions{TLS: &tls.Config{MaxVersion: tls.VersionTLS11}}); err == nil {
		t.Error("a client limited to TLS 1.1 was made")
	}
}
