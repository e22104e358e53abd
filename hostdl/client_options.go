package hostdl

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/viacodec/viacodec/core"
)

// Client defaults. A zero field in ClientOptions means its default.
const (
	DefaultConcurrency      = 4
	DefaultChunkSize        = core.DefaultChunkSize // 4 MiB
	DefaultRequestTimeout   = 30 * time.Second
	DefaultRetries          = 4
	DefaultBackoffMin       = 100 * time.Millisecond
	DefaultBackoffMax       = 5 * time.Second
	DefaultMaxManifestBytes = 64 << 20
	DefaultMaxItems         = 1 << 20
)

// Protocol is the HTTP version a Client speaks.
type Protocol uint8

const (
	// HTTP1 is HTTP/1.1, one connection per parallel range. Default.
	HTTP1 Protocol = iota
	// HTTP2 is HTTP/2: cleartext with prior knowledge for http:// sources,
	// negotiated by ALPN for https:// ones. All ranges share one connection.
	HTTP2
)

// ClientOptions configures a Client. The zero value is a safe default.
type ClientOptions struct {
	// Receiver is this receiver's id as the source records it: 1 to 256
	// printable ASCII characters. Default: the Subject CN of the client
	// certificate, if there is one (under mutual TLS a source takes the id
	// from the certificate and refuses any other), else a fresh random
	// UUID.
	Receiver string
	// Resolve maps a batch's Source to the base URL to download from.
	// Default: the Source is already the base URL (http:// or https://).
	Resolve func(source string) (string, error)
	// Protocol selects HTTP/1.1 (default) or HTTP/2.
	Protocol Protocol

	// Concurrency is how many ranges of one batch are fetched at once:
	// 1 to 256, default 4.
	Concurrency int
	// ChunkSize is the size of one range: 4 KiB to 256 MiB, default 4 MiB,
	// rounded up to a whole number of the manifest's blocks.
	ChunkSize int64
	// RequestTimeout fails a request when no byte of it arrives for this
	// long: connecting, waiting for the headers or reading the body.
	// 1ms to 1h, default 30s.
	RequestTimeout time.Duration
	// Retries is how often a failed request is tried again (a transport
	// error, a stall, a 5xx or a 400/408/429 that did not come from hostdl,
	// a checksum mismatch): 1 to 100, default 4; negative means never.
	Retries int
	// BackoffMin and BackoffMax bound the wait before a retry, which
	// doubles from BackoffMin for each failure in a row, with jitter:
	// default 100ms and 5s.
	BackoffMin, BackoffMax time.Duration

	// Progress, if set, is told the verified bytes of a batch so far and
	// its total, after the manifest and after each range. Calls for one
	// Fetch are serialized; it must return quickly.
	Progress func(refID uuid.UUID, done, total int64)

	// TLS is the config for https:// sources (cloned; MinVersion is
	// raised to TLS 1.2, and a MaxVersion below it is an error); TLSFiles
	// builds one from PEM files. Set TLS or TLSFiles, not both. Default:
	// system roots.
	TLS      *tls.Config
	TLSFiles TLSFiles

	// MaxManifestBytes limits the manifest's size: 1 KiB to 1 GiB,
	// default 64 MiB. MaxItems limits its items: 1 to 1<<24, default 1<<20.
	MaxManifestBytes int64
	MaxItems         int

	// Logger receives retries and failures at Debug; default
	// slog.Default(). No log record ever holds a token.
	Logger *slog.Logger
}

func (o ClientOptions) validate() (ClientOptions, error) {
	f := fields{typ: "ClientOptions"}
	conc, items, retries := int64(o.Concurrency), int64(o.MaxItems), int64(o.Retries)
	bound(&f, "Concurrency", &conc, DefaultConcurrency, 1, 256)
	bound(&f, "ChunkSize", &o.ChunkSize, DefaultChunkSize, 4<<10, 256<<20)
	bound(&f, "MaxManifestBytes", &o.MaxManifestBytes, DefaultMaxManifestBytes, 1<<10, 1<<30)
	bound(&f, "MaxItems", &items, DefaultMaxItems, 1, 1<<24)
	if retries >= 0 {
		bound(&f, "Retries", &retries, DefaultRetries, 1, 100)
	} else {
		retries = 0
	}
	bound(&f, "RequestTimeout", &o.RequestTimeout, DefaultRequestTimeout, time.Millisecond, time.Hour)
	bound(&f, "BackoffMin", &o.BackoffMin, DefaultBackoffMin, time.Millisecond, time.Hour)
	bound(&f, "BackoffMax", &o.BackoffMax, max(DefaultBackoffMax, o.BackoffMin), o.BackoffMin, time.Hour)
	if f.err != nil {
		return o, f.err
	}
	o.Concurrency, o.MaxItems, o.Retries = int(conc), int(items), int(retries)
	if o.Protocol > HTTP2 {
		return o, fmt.Errorf("hostdl: ClientOptions.Protocol %d is not defined", o.Protocol)
	}
	if o.Receiver == "" {
		o.Receiver = uuid.NewString()
	} else if !core.ValidReceiverID(o.Receiver) {
		return o, fmt.Errorf("hostdl: ClientOptions.Receiver must be 1 to %d printable ASCII characters", core.MaxReceiverIDLen)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}
