package abihost

import (
	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
	"github.com/viacodec/viacodec/internal/abi"
)

// RelayOptions mirrors the shells' relay options; zero fields mean
// hostdl's defaults.
type RelayOptions struct {
	Listen    string // default "127.0.0.1:0"; the port may be a range, first-last
	Advertise string // base URL, or a host alone (with the port bound)
	// TLSCert and TLSKey are the relay's server certificate and the client
	// certificate it presents upstream; TLSCA verifies upstream servers
	// and, with ClientAuth, the receivers its server accepts.
	TLSCert, TLSKey, TLSCA string
	ClientAuth             bool
	AllowCleartext         bool   // as HostOptions.AllowCleartext
	Budget                 int64  // bytes of pieces in memory: default 256 MiB
	SpillDir               string // pieces beyond the budget go to files here, else are dropped
}

// Relay is a pull-through caching relay (hostdl.Relay) behind a handle:
// Forward re-points a message's batches at it, and it serves them to any
// number of receivers, fetching each piece upstream once. Released, it
// stops serving (Close).
type Relay struct{ r *hostdl.Relay }

// NewRelay starts a relay.
func NewRelay(o RelayOptions) (*Relay, error) {
	if o.ClientAuth && (o.TLSCert == "" || o.TLSCA == "") {
		return nil, abi.Errorf(core.KindInvalid, "relay: client auth needs a certificate, its key and a CA")
	}
	server := hostdl.ServerOptions{Addr: o.Listen, Advertise: o.Advertise, AllowCleartext: o.AllowCleartext}
	if o.TLSCert != "" || o.TLSKey != "" {
		server.TLSFiles = hostdl.TLSFiles{CertFile: o.TLSCert, KeyFile: o.TLSKey}
		if o.ClientAuth {
			server.TLSFiles.CAFile = o.TLSCA
		}
	}
	r, err := hostdl.NewRelay(hostdl.RelayOptions{
		Server:   server,
		Client:   hostdl.ClientOptions{TLSFiles: hostdl.TLSFiles{CertFile: o.TLSCert, KeyFile: o.TLSKey, CAFile: o.TLSCA}},
		Budget:   o.Budget,
		SpillDir: o.SpillDir,
		Logger:   hostdl.LoggerFromEnv(),
	})
	if err != nil {
		return nil, abi.Wrap(err, "relay")
	}
	return &Relay{r: r}, nil
}

// Forward returns msg with every batch re-pointed at the relay, which
// holds them from now on (hostdl.Relay.Forward).
func (r *Relay) Forward(msg []byte) ([]byte, error) {
	out, err := r.r.Forward(msg)
	if err != nil {
		return nil, abi.Wrap(err, "relay forward")
	}
	return out, nil
}

// Source returns the base URL the relay's receivers reach it at.
func (r *Relay) Source() string { return r.r.Source() }

// Stats returns the relay's counters.
func (r *Relay) Stats() hostdl.RelayStats { return r.r.Stats() }

// Close stops the relay: its receivers fail, what it holds is freed. A
// release has no caller to report a failed shutdown to: hostdl logs it.
func (r *Relay) Close() { _ = r.r.Close() }
