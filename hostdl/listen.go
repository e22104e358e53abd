package hostdl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/viacodec/viacodec/core"
)

// Where a server listens and what it tells receivers: ServerOptions.Addr
// (a port, or a range of ports) and ServerOptions.Advertise (a URL, or a
// host whose port is the one the server bound), parsed once when the
// options are validated and completed once the listener is open.

// maxPortRange bounds the ports of one range, so that a typo
// ("1-65535") does not make a server probe the whole machine.
const maxPortRange = 1024

// listenAddr is ServerOptions.Addr parsed: a host and the ports to try.
type listenAddr struct {
	host   string // an IP, a name, or "" (every interface)
	lo, hi int    // the ports to try, in order; 0, 0: a free one
}

// parseListen parses "host:port" or "host:lo-hi".
func parseListen(addr string) (listenAddr, error) {
	host, ports, err := net.SplitHostPort(addr)
	if err != nil {
		return listenAddr{}, fmt.Errorf("hostdl: listen address %q is not host:port or host:first-last", addr)
	}
	la := listenAddr{host: host}
	first, last, isRange := strings.Cut(ports, "-")
	if la.lo, err = port(first, isRange); err == nil {
		la.hi = la.lo
		if isRange {
			la.hi, err = port(last, true)
		}
	}
	switch {
	case err != nil:
		return listenAddr{}, fmt.Errorf("hostdl: listen address %q: %w", addr, err)
	case la.hi < la.lo:
		return listenAddr{}, fmt.Errorf("hostdl: listen address %q: the port range ends before it starts", addr)
	case la.hi-la.lo >= maxPortRange:
		return listenAddr{}, fmt.Errorf("hostdl: listen address %q: a range holds at most %d ports", addr, maxPortRange)
	}
	return la, nil
}

// port parses a port number: 1 to 65535, or 0 (a free port) when
// !nonZero.
func port(s string, nonZero bool) (int, error) {
	n, err := strconv.Atoi(s)
	switch {
	case err != nil || n < 0 || n > 65535 || strings.HasPrefix(s, "+"):
		return 0, fmt.Errorf("port %q is not a number from 0 to 65535", s)
	case n == 0 && nonZero:
		return 0, errors.New("a port range starts at port 1")
	}
	return n, nil
}

// listen opens a TCP listener on the first port of la that is free.
func (la listenAddr) listen() (net.Listener, error) {
	var err error
	for p := la.lo; p <= la.hi; p++ {
		var ln net.Listener
		if ln, err = net.Listen("tcp", net.JoinHostPort(la.host, strconv.Itoa(p))); err == nil {
			return ln, nil
		}
	}
	if la.lo == la.hi {
		return nil, fmt.Errorf("hostdl: listen: %w", err)
	}
	return nil, fmt.Errorf("hostdl: listen: no port from %d to %d on %q is free: %w", la.lo, la.hi, la.host, err)
}

// advertised is ServerOptions.Advertise parsed.
type advertised struct {
	scheme string // "http", "https", or "" for the server's own
	host   string // a name or an IP, without brackets; "" when Advertise is unset
	port   int    // 0: the port the server bound
	path   string // the URL's path, kept
}

// parseAdvertise parses an Advertise value: a base URL with its port
// (http://name:port[/path] or https://...), or a host name or IP alone,
// with or without a port. It refuses what no receiver could use: a URL
// without a port or with port 0 (write :443 if that is the port), and an
// unspecified IP (0.0.0.0, ::).
func parseAdvertise(s string) (advertised, error) {
	if s == "" {
		return advertised{}, nil
	}
	fail := func(why string) (advertised, error) {
		return advertised{}, fmt.Errorf("hostdl: advertised address %q %s", s, why)
	}
	var a advertised
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			return fail("is not an http:// or https:// base URL (or a host name alone)")
		}
		if u.Port() == "" {
			return fail("names no port: write it (https://host:443), or give the host alone (without a scheme) to advertise the port the host listens on")
		}
		p, err := port(u.Port(), true)
		if err != nil {
			return fail("has port " + u.Port() + ": give a port from 1 to 65535, or the host alone (without a scheme) to advertise the port the host listens on")
		}
		a = advertised{scheme: u.Scheme, host: u.Hostname(), port: p, path: u.EscapedPath()}
	} else {
		host, ps, err := net.SplitHostPort(s)
		if err != nil { // no port: a name, an IP, or a bracketed IPv6
			host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		} else if a.port, err = port(ps, true); err != nil {
			return fail("has port " + ps + ": give a port from 1 to 65535, or leave it out to advertise the port the host listens on")
		}
		a.host = host
	}
	if ip := net.ParseIP(a.host); ip != nil && ip.IsUnspecified() {
		return fail("names no machine (" + a.host + " means every interface): advertise the name or address receivers reach this host by")
	}
	if a.host == "" || strings.ContainsAny(a.host, "/?#@[] ") || strings.Contains(a.host, ":") && net.ParseIP(a.host) == nil {
		return fail("is not an http:// or https:// base URL, or a host name or IP address")
	}
	return a, nil
}

// local reports whether a sends receivers to this machine, or over TLS:
// unset, https://, or a loopback IP or localhost.
func (a advertised) local() bool {
	if a.host == "" || a.scheme == "https" {
		return true
	}
	ip := net.ParseIP(a.host)
	return strings.EqualFold(a.host, "localhost") || (ip != nil && ip.IsLoopback())
}

// source returns the base URL receivers are told: a completed with the
// server's scheme and the port it bound on ln; without a, ln's address,
// unless that is an unspecified IP, which no receiver could dial.
func (a advertised) source(useTLS bool, ln net.Addr) (string, error) {
	scheme := a.scheme
	if scheme == "" {
		scheme = "http"
		if useTLS {
			scheme = "https"
		}
	}
	tcp, isTCP := ln.(*net.TCPAddr)
	host, port := a.host, a.port
	if host == "" {
		if isTCP && tcp.IP.IsUnspecified() {
			return "", errNoAdvertise(ln.String())
		}
		return scheme + "://" + ln.String(), nil
	}
	if port == 0 {
		if !isTCP {
			return "", fmt.Errorf("hostdl: advertised address %q names no port, and the listener (%s) has none to take", host, ln)
		}
		port = tcp.Port
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + a.path, nil
}

// everyInterface reports whether la listens on every interface.
func (la listenAddr) everyInterface() bool {
	ip := net.ParseIP(la.host)
	return la.host == "" || (ip != nil && ip.IsUnspecified())
}

// errNoAdvertise is the refusal of a server on every interface that
// advertises nothing: its listening address names no machine.
func errNoAdvertise(listen string) error {
	return fmt.Errorf("hostdl: listening on %s (every interface), the host needs an address to advertise: "+
		"the name or address its receivers reach it by", listen)
}

// isLocal reports whether a listening address cannot be reached from
// another machine: a loopback IP, or not TCP at all (a Unix socket).
func isLocal(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return !ok || t.IP.IsLoopback()
}

// beyondLoopback reports whether la surely listens beyond loopback, as
// its address says without resolving a name: on every interface, or on an
// IP that is not loopback. (Where a name listens is found out once the
// server listens.)
func (la listenAddr) beyondLoopback() bool {
	ip := net.ParseIP(la.host)
	return la.host == "" || (ip != nil && !ip.IsLoopback())
}

// errCleartext is the refusal of a server without TLS that would listen
// on, or advertise, an address beyond loopback. The text names no API: a
// binding's caller sets the option by another name (allow_cleartext).
func errCleartext(listen, advertise string) error {
	return core.NewError(core.KindInvalid, nil, "hostdl: refusing to serve bearer tokens in cleartext on %s (advertised %q): "+
		"configure TLS, or allow cleartext", listen, advertise)
}
