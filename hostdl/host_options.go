package hostdl

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
)

// DefaultCloseGrace is how long Host.Close lets the responses in progress
// finish before it closes their connections.
const DefaultCloseGrace = 2 * time.Second

// HostOptions configures a Host. The zero value is a safe default: a
// cleartext server on a free loopback port, a client with a random receiver
// id, a core.Table, time.Now and crypto/rand. A field the host fills from
// one shared setting (a clock, a source of randomness, a logger, TLS) must
// be left unset in the nested options, so that no part can disagree.
type HostOptions struct {
	// Server configures the server: address, advertised URL, limits,
	// sweep interval, metrics. Leave its Clock and Logger unset (the
	// host's Clock and Logger go there), and its TLS fields when TLSFiles
	// is set.
	Server ServerOptions
	// Client configures the client: receiver id, protocol, parallel
	// ranges, retries, progress. Leave its Logger unset, and its TLS
	// fields when TLSFiles is set. Without Client.Receiver, the host's
	// receiver id is its client certificate's Subject CN when that is a
	// receiver id (what a source under mutual TLS checks), else
	// DefaultReceiver, else a UUID drawn from Rand.
	Client ClientOptions
	// DefaultReceiver is the receiver id of a host whose Client.Receiver
	// is unset and whose client certificate, if any, names none: 1 to 256
	// printable ASCII characters.
	DefaultReceiver string

	// TLSFiles gives the host one identity for both of its roles: CertFile
	// and KeyFile are its server certificate and the client certificate it
	// presents (both or neither); CAFile is the CA of its peers, which
	// verifies the servers it downloads from (default: the system roots)
	// and, with ClientAuth, the clients that download from it. Without
	// CertFile the server speaks cleartext. Set TLSFiles or the TLS fields
	// of Server and Client, not both.
	TLSFiles TLSFiles
	// ClientAuth makes the server accept only clients with a certificate
	// that TLSFiles.CAFile signed (mutual TLS). It needs all three files.
	ClientAuth bool

	// Table configures the core.Table the host makes (KeepFinished).
	// Leave its Clock and Rand unset: the host's go there.
	Table core.TableOptions
	// NewTable, if set, makes the table the host serves instead of
	// core.NewTable: a table that lives elsewhere, such as in a wasm
	// guest. It is called once, with Table and the host's Clock and Rand
	// filled in, and must use that clock and that randomness. The host
	// owns the table: Close calls its Close method, if it has one
	// (Close() or Close() error).
	NewTable func(core.TableOptions) (Table, error)

	// RefThreshold is the RefThreshold of Host.EncMode when its options
	// leave it zero: 1 to 2^48, default core.DefaultRefThreshold (1 MiB).
	RefThreshold int64

	// Clock is the host's one clock: the table's, and the time its server
	// passes to Table.Sweep. Default time.Now.
	Clock func() time.Time
	// Rand is the host's one source of randomness, safe for concurrent
	// use: the table's manifest nonces, the ref ids and tokens of
	// Host.EncMode, the default receiver id. Default crypto/rand.
	Rand io.Reader
	// Logger receives the server's and the client's logs; default
	// slog.Default(). LoggerFromEnv gives one that $VIACODEC_LOG controls.
	Logger *slog.Logger

	// CloseGrace is how long Close lets responses in progress finish
	// (see Host.Close): 1ms to 1h, default 2s.
	CloseGrace time.Duration

	// UploadBudget bounds the bytes of the uploads the host holds for
	// sources that cannot be reached (Host.GrantUpload): every grant's
	// MaxBytes counts until its upload expires or its transaction ends.
	// 1 MiB to 1 TiB, default 1 GiB.
	UploadBudget int64
}

// maxRefThreshold is core's upper bound of EncOptions.RefThreshold.
const maxRefThreshold = 1 << 48

// validate checks o, fills in its defaults and returns the options of the
// server and the client it describes.
func (o HostOptions) validate() (HostOptions, ServerOptions, ClientOptions, error) {
	so, co := o.Server, o.Client
	fail := func(format string, args ...any) (HostOptions, ServerOptions, ClientOptions, error) {
		return o, so, co, fmt.Errorf("hostdl: HostOptions."+format, args...)
	}
	switch {
	case so.Clock != nil:
		return fail("Server.Clock must be unset: the server sweeps with HostOptions.Clock")
	case so.Logger != nil:
		return fail("Server.Logger must be unset: set HostOptions.Logger")
	case co.Logger != nil:
		return fail("Client.Logger must be unset: set HostOptions.Logger")
	case o.Table.Clock != nil:
		return fail("Table.Clock must be unset: the table runs on HostOptions.Clock")
	case o.Table.Rand != nil:
		return fail("Table.Rand must be unset: the table draws from HostOptions.Rand")
	}
	if !o.TLSFiles.isZero() || o.ClientAuth {
		f := o.TLSFiles
		switch {
		case so.TLS != nil || !so.TLSFiles.isZero() || co.TLS != nil || !co.TLSFiles.isZero():
			return fail("TLSFiles or the TLS fields of Server and Client: set one, not both")
		case (f.CertFile == "") != (f.KeyFile == ""):
			return fail("TLSFiles needs both CertFile and KeyFile, or neither")
		case o.ClientAuth && (f.CertFile == "" || f.CAFile == ""):
			return fail("ClientAuth needs TLSFiles with CertFile, KeyFile and CAFile")
		}
		so.TLSFiles = TLSFiles{CertFile: f.CertFile, KeyFile: f.KeyFile}
		if o.ClientAuth {
			so.TLSFiles.CAFile = f.CAFile
		}
		co.TLSFiles = f
	}
	fl := fields{typ: "HostOptions"}
	bound(&fl, "CloseGrace", &o.CloseGrace, DefaultCloseGrace, time.Millisecond, time.Hour)
	bound(&fl, "RefThreshold", &o.RefThreshold, core.DefaultRefThreshold, 1, maxRefThreshold)
	bound(&fl, "UploadBudget", &o.UploadBudget, DefaultUploadBudget, 1<<20, 1<<40)
	if fl.err != nil {
		return o, so, co, fl.err
	}

	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Table.Clock, o.Table.Rand = o.Clock, o.Rand
	so.Clock, so.Logger = o.Clock, o.Logger
	co.Logger = o.Logger
	if co.Receiver == "" && (co.TLS != nil || co.TLSFiles.CertFile != "") {
		// Under mutual TLS a receiver is who its certificate says.
		tc, err := clientTLS(co.TLS, co.TLSFiles)
		if err != nil {
			return o, so, co, err
		}
		co.Receiver = certReceiver(tc)
	}
	if co.Receiver == "" && o.DefaultReceiver != "" {
		if !core.ValidReceiverID(o.DefaultReceiver) {
			return o, so, co, fmt.Errorf("hostdl: default receiver id %q is not 1 to %d printable ASCII characters", o.DefaultReceiver, core.MaxReceiverIDLen)
		}
		co.Receiver = o.DefaultReceiver
	}
	if co.Receiver == "" {
		id, err := uuid.NewRandomFromReader(o.Rand)
		if err != nil {
			return o, so, co, core.NewError(core.KindInvalid, err, "hostdl: receiver id from HostOptions.Rand")
		}
		co.Receiver = id.String()
	}
	// Both validate again in their constructors; checking here first means
	// that no table is made for options that cannot work.
	if _, err := so.validate(); err != nil {
		return o, so, co, err
	}
	if _, err := co.validate(); err != nil {
		return o, so, co, err
	}
	return o, so, co, nil
}

// Check validates o as NewHost does, without listening or making
// anything, so that options a host is made with later can be refused at
// once. NewHost may still fail where only listening tells: a port taken,
// or a host name that is not loopback without TLS.
func (o HostOptions) Check() error {
	_, _, _, err := o.validate()
	return err
}

// makeTable makes the table the host serves.
func (o HostOptions) makeTable() (Table, error) {
	if o.NewTable == nil {
		t, err := core.NewTable(o.Table)
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	t, err := o.NewTable(o.Table)
	switch {
	case err != nil:
		return nil, fmt.Errorf("hostdl: HostOptions.NewTable: %w", err)
	case t == nil:
		return nil, errors.New("hostdl: HostOptions.NewTable returned no table")
	}
	return t, nil
}
