package hostdl

import (
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/viacodec/viacodec/core"
)

// takenPorts listens on n consecutive loopback ports and returns the
// first; the listeners close when the test ends.
func takenPorts(t *testing.T, n int) int {
	t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		first, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns := []net.Listener{first}
		p := first.Addr().(*net.TCPAddr).Port
		for i := 1; i < n && p+i <= 65535; i++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) == n {
			t.Cleanup(func() {
				for _, ln := range lns {
					ln.Close()
				}
			})
			return p
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	t.Fatalf("found no %d consecutive free ports", n)
	return 0
}

func boundPort(s *Server) int { return s.Addr().(*net.TCPAddr).Port }

// TestListenPortRange: a server takes the first free port of a range, a
// fixed port is the port it binds, and a range with no free port is one
// clear error.
func TestListenPortRange(t *testing.T) {
	table := newTable(t)
	p := takenPorts(t, 2)
	ps := strconv.Itoa(p)
	for attempt := 0; ; attempt++ {
		srv, err := NewServer(table, ServerOptions{Logger: quiet, Addr: "127.0.0.1:" + ps + "-" + strconv.Itoa(p+40)})
		if err != nil {
			t.Fatal(err)
		}
		got := boundPort(srv)
		srv.Close()
		if got < p+2 || got > p+40 {
			t.Fatalf("bound port %d, want one of %d-%d (%d and %d are taken)", got, p+2, p+40, p, p+1)
		}
		if got == p+2 || attempt == 5 { // another process may hold p+2
			break
		}
	}

	_, err := NewServer(table, ServerOptions{Logger: quiet, Addr: "127.0.0.1:" + ps + "-" + strconv.Itoa(p+1)})
	if err == nil || !strings.Contains(err.Error(), "no port from "+ps+" to "+strconv.Itoa(p+1)) {
		t.Fatalf("a range of taken ports: %v", err)
	}

	// A fixed port: one that was free a moment ago (another process may
	// take it meanwhile: try again).
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		free := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
		srv, err := NewServer(table, ServerOptions{Logger: quiet, Addr: "127.0.0.1:" + free})
		if err != nil && attempt < 5 {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		srv.Close()
		if strconv.Itoa(boundPort(srv)) != free || srv.Source() != "http://127.0.0.1:"+free {
			t.Fatalf("bound %d, source %s; want port %s", boundPort(srv), srv.Source(), free)
		}
		break
	}
}

// TestAdvertiseBoundPort: a host name or IP advertised without a port is
// advertised with the port the server bound, under the server's scheme,
// and receivers download through it.
func TestAdvertiseBoundPort(t *testing.T) {
	table := newTable(t)
	for adv, want := range map[string]string{
		"localhost":      "http://localhost:%d",
		"LocalHost":      "http://LocalHost:%d",
		"127.0.0.1":      "http://127.0.0.1:%d",
		"::1":            "http://[::1]:%d",
		"[::1]":          "http://[::1]:%d",
		"localhost:8470": "http://localhost:8470",
	} {
		srv := startServer(t, table, ServerOptions{Advertise: adv})
		if w := strings.Replace(want, "%d", strconv.Itoa(boundPort(srv)), 1); srv.Source() != w {
			t.Errorf("advertise %q: source %q, want %q", adv, srv.Source(), w)
		}
	}

	srv := startServer(t, table, ServerOptions{Advertise: "localhost"})
	mdl := newModel(2<<20, 2, 50)
	msg, tx := publish(t, table, srv.Source(), mdl.body(), core.PublishOptions{Receivers: 1})
	timedDecode(t, newTestClient(t, ClientOptions{Receiver: "agent"}), msg, mdl)
	if st, _ := tx.Status(); st != core.StateCompleted {
		t.Fatalf("transaction %v", st)
	}

	// Every interface, a loopback name advertised, TLS: https:// and the port bound.
	pki := newPKI(t, "adv")
	srv = startServer(t, table, ServerOptions{Addr: "0.0.0.0:0", Advertise: "127.0.0.1",
		TLS: &tls.Config{Certificates: []tls.Certificate{pki.server}}})
	if want := "https://127.0.0.1:" + strconv.Itoa(boundPort(srv)); srv.Source() != want {
		t.Fatalf("source %q, want %q", srv.Source(), want)
	}
	if err := downloadOnce(t, table, srv, newTestClient(t, ClientOptions{TLS: &tls.Config{RootCAs: pki.caPool}})); err != nil {
		t.Fatal(err)
	}
}

// TestUnusableAddresses: an address no receiver could use, and a listen
// address that is not one, are clear errors before anything listens.
func TestUnusableAddresses(t *testing.T) {
	table := newTable(t)
	pki := newPKI(t, "unusable")
	tlsConf := &tls.Config{Certificates: []tls.Certificate{pki.server}}
	for _, c := range []struct {
		o    ServerOptions
		want string
	}{
		{ServerOptions{Advertise: "https://site.example"}, "names no port"},
		{ServerOptions{Advertise: "https://site.example:0"}, "has port 0"},
		{ServerOptions{Advertise: "https://site.example:99999"}, "has port 99999"},
		{ServerOptions{Advertise: "site.example:0"}, "has port 0"},
		{ServerOptions{Advertise: "https://0.0.0.0:8443"}, "names no machine"},
		{ServerOptions{Advertise: "0.0.0.0"}, "names no machine"},
		{ServerOptions{Advertise: "[::]:8443"}, "names no machine"},
		{ServerOptions{Advertise: "ftp://site.example:21"}, "is not an http:// or https:// base URL"},
		{ServerOptions{Advertise: "https://site.example:8443/?q"}, "is not an http:// or https:// base URL"},
		{ServerOptions{Advertise: "site.example/path"}, "is not an http:// or https:// base URL"},
		{ServerOptions{Addr: "0.0.0.0:0"}, "needs an address to advertise"},
		{ServerOptions{Addr: "[::]:0"}, "needs an address to advertise"},
		{ServerOptions{Addr: ":0"}, "needs an address to advertise"},
		{ServerOptions{Addr: "127.0.0.1"}, "is not host:port"},
		{ServerOptions{Addr: "127.0.0.1:x"}, `port "x"`},
		{ServerOptions{Addr: "127.0.0.1:9010-9000"}, "ends before it starts"},
		{ServerOptions{Addr: "127.0.0.1:0-9000"}, "starts at port 1"},
		{ServerOptions{Addr: "127.0.0.1:1-65535"}, "at most 1024 ports"},
	} {
		c.o.Logger, c.o.TLS = quiet, tlsConf
		s, err := NewServer(table, c.o)
		if err == nil {
			s.Close()
			t.Errorf("Addr %q, Advertise %q: started, source %s", c.o.Addr, c.o.Advertise, s.Source())
			continue
		}
		if !strings.HasPrefix(err.Error(), "hostdl: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Addr %q, Advertise %q: %v; want %q", c.o.Addr, c.o.Advertise, err, c.want)
		}
	}
}

// TestHostOptionsCheck: Check refuses what NewHost would, without
// listening: cleartext on every interface is refused before any port is
// taken, and good options pass even when their port is taken (only
// listening tells).
func TestHostOptionsCheck(t *testing.T) {
	for _, o := range []HostOptions{
		{Server: ServerOptions{Addr: "0.0.0.0:0"}},
		{Server: ServerOptions{Addr: ":9000-9010"}},
		{Server: ServerOptions{Addr: "192.0.2.1:0"}},
		{Server: ServerOptions{Advertise: "192.0.2.1"}},
	} {
		err := o.Check()
		wantKind(t, err, core.KindInvalid)
		if !strings.Contains(err.Error(), "configure TLS, or allow cleartext") {
			t.Errorf("%+v: %v", o.Server, err)
		}
	}
	if err := (HostOptions{Server: ServerOptions{Advertise: "https://h"}}).Check(); err == nil || !strings.Contains(err.Error(), "names no port") {
		t.Errorf("an advertised URL without a port: %v", err)
	}
	taken := takenPorts(t, 1)
	for _, o := range []HostOptions{
		{},
		{Server: ServerOptions{Addr: "127.0.0.1:" + strconv.Itoa(taken)}},
		{Server: ServerOptions{Addr: "0.0.0.0:0", Advertise: "site.example", AllowCleartext: true}},
	} {
		if err := o.Check(); err != nil {
			t.Errorf("%+v: %v", o.Server, err)
		}
	}
}

// TestDefaultReceiver: without Client.Receiver a host's receiver id is its
// certificate's CN, else DefaultReceiver, else a UUID; a bad
// DefaultReceiver is an error.
func TestDefaultReceiver(t *testing.T) {
	pki := newPKI(t, "dflt")
	_, certFile, keyFile := pki.leaf("site-a", 0, []net.IP{net.IPv4(127, 0, 0, 1)})
	for _, c := range []struct {
		o    HostOptions
		want string
	}{
		{HostOptions{DefaultReceiver: "cell-1"}, "cell-1"},
		{HostOptions{DefaultReceiver: "cell-1", Client: ClientOptions{Receiver: "agent"}}, "agent"},
		{HostOptions{DefaultReceiver: "cell-1", TLSFiles: TLSFiles{CertFile: certFile, KeyFile: keyFile, CAFile: pki.caFile}}, "site-a"},
	} {
		c.o.Logger = quiet
		h, err := NewHost(c.o)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.Receiver(); got != c.want {
			t.Errorf("%+v: receiver %q, want %q", c.o, got, c.want)
		}
		h.Close()
	}
	if err := (HostOptions{DefaultReceiver: "a\x00b"}).Check(); err == nil || !strings.Contains(err.Error(), "default receiver id") {
		t.Errorf("a bad default receiver id: %v", err)
	}
}
