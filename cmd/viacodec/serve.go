package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cli"
	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/hostdl"
	"github.com/viacodec/viacodec/hostdl/s3store"
	"github.com/viacodec/viacodec/internal/tensorfile"
)

// tlsFlags are the TLS flags of serve and fetch.
type tlsFlags struct{ cert, key, ca *string }

func addTLSFlags(fs *flag.FlagSet, role string) tlsFlags {
	return tlsFlags{
		cert: fs.String("tls-cert", "", "PEM certificate `FILE` "+role+" presents (with -tls-key)"),
		key:  fs.String("tls-key", "", "PEM key `FILE` of -tls-cert"),
		ca:   fs.String("tls-ca", "", "PEM `FILE` of the CA that signs the peers (default for a client: the system roots)"),
	}
}

// optionFlags names the hostdl options that serve and fetch set from
// their flags by those flags, in the errors the command prints.
var optionFlags = strings.NewReplacer(
	"configure TLS, or allow cleartext", "give -tls-cert and -tls-key, or -allow-cleartext",
	"ServerOptions.Addr", "-listen",
	"ServerOptions.Advertise", "-advertise",
	"HostOptions.ClientAuth", "-client-auth",
	"HostOptions.RefThreshold", "-ref-threshold",
	"ClientOptions.Receiver", "-receiver",
	"HostOptions.TLSFiles", "TLS",
	"ServerOptions.TLSFiles", "TLS",
	"ClientOptions.TLSFiles", "TLS",
	"TLSFiles", "TLS",
	"CertFile", "-tls-cert",
	"KeyFile", "-tls-key",
	"CAFile", "-tls-ca",
)

func (t tlsFlags) files() hostdl.TLSFiles {
	return hostdl.TLSFiles{CertFile: *t.cert, KeyFile: *t.key, CAFile: *t.ca}
}

// runServe publishes the arrays of a file by reference and serves them
// until its receivers have them.
func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	format := fs.String("format", "", "format of FILE, `safetensors|npz|message` (default: from its extension)")
	out := fs.String("o", "-", "write the message to `MSGFILE`; - for standard output, which is closed once written")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on, `HOST:PORT`, or HOST:FIRST-LAST for the first free port of a range")
	advertise := fs.String("advertise", "", "what the message tells receivers: a base `URL` with its port, or a host name alone,\nwith the port served on (default: http:// or https:// and the address)")
	receivers := fs.Int("receivers", 1, "`N` receivers to wait for: serving ends when they all confirmed")
	timeout := fs.Duration("timeout", 0, "give up after `D` (default: wait until the receivers are done or Ctrl-C)")
	threshold := fs.Int64("ref-threshold", 1, "arrays of `BYTES` or more go by reference, smaller ones inline")
	tf := addTLSFlags(fs, "the server")
	clientAuth := fs.Bool("client-auth", false, "accept only clients with a certificate -tls-ca signed (mutual TLS)")
	allowCleartext := fs.Bool("allow-cleartext", false, "serve plain HTTP beyond loopback too: the message's tokens cross the network in the clear")
	store := fs.String("store", "", "upload the arrays to an object store, `s3://BUCKET/PREFIX`, for the receivers to download from there; the AWS environment variables give the credentials, region and endpoint (AWS_ENDPOINT_URL_S3)")
	files, err := cli.ParseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(files) != 1:
		return cli.Usagef("expects one FILE to serve, or - for standard input")
	case *receivers < 1:
		return cli.Usagef("-receivers %d: want 1 or more", *receivers)
	case *threshold < 1:
		return cli.Usagef("-ref-threshold %d: want 1 or more", *threshold)
	case *timeout < 0:
		return cli.Usagef("-timeout %v is negative", *timeout)
	}
	in := files[0]
	ff, isMessage, err := contentFormat(*format, in, "input")
	if err != nil {
		return err
	}
	data, err := readInput(in)
	if err != nil {
		return err
	}
	body, err := readBody(data, ff, isMessage)
	if err != nil && isMessage {
		return decodeError(in, data, err)
	} else if err != nil {
		return fmt.Errorf("%s: %w", displayName(in), err)
	}

	host, err := hostdl.NewHost(hostdl.HostOptions{
		Logger:       slog.New(slog.DiscardHandler),
		Server:       hostdl.ServerOptions{Addr: *listen, Advertise: *advertise, AllowCleartext: *allowCleartext},
		TLSFiles:     tf.files(),
		ClientAuth:   *clientAuth,
		RefThreshold: *threshold,
	})
	if err != nil {
		return err
	}
	defer host.Close()
	enc, err := host.EncMode(core.EncOptions{})
	if err != nil {
		return err
	}
	msg, err := enc.Encode(body)
	if err != nil {
		return err
	}
	batch := msg.Batch()
	if batch == nil {
		return fmt.Errorf("%s has no array of -ref-threshold bytes or more to serve", displayName(in))
	}
	inactivity := *timeout
	if inactivity == 0 {
		inactivity = math.MaxInt64 // until the receivers are done or Ctrl-C
	}
	po := core.PublishOptions{Receivers: *receivers, Timeout: inactivity}
	var tx *core.Transaction
	sent := msg // the message the receivers get
	if *store != "" {
		st, err := s3store.Open(*store, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer st.Close() // after tx.Abort: the objects go with the transaction
		ctx, stop := cli.Interruptible(*timeout)
		tx, sent, err = st.Publish(ctx, host, msg, po)
		stop()
		if err != nil {
			return err
		}
	} else if tx, err = host.Publish(batch, po); err != nil {
		return err
	}
	defer tx.Abort()
	if err := writeOutput(*out, func(w io.Writer) error {
		_, err := sent.WriteTo(w)
		return err
	}); err != nil {
		return err
	}
	if *out == "-" {
		os.Stdout.Close() // whoever reads the message sees its end
	}

	status := statusOutput(*out)
	where := "standard output"
	if *out != "-" {
		where = *out
	}
	fmt.Fprintf(status, "serving %s (%s) of %s at %s for %s; message (%s) on %s\n",
		cli.Plural(batch.Ref.Items, "array"), cli.FormatBytes(batch.Ref.Bytes), displayName(in), host.Source(), cli.Plural(*receivers, "receiver"), cli.FormatBytes(int64(sent.Len())), where)
	if *store != "" {
		fmt.Fprintf(status, "the arrays are in %s; receivers ask %s only for the manifest and the receipt\n", *store, host.Source())
	}
	ctx, stop := cli.Interruptible(*timeout)
	defer stop()
	return watch(ctx, tx, *receivers, batch.Ref.Bytes, cli.NewProgress(status), *timeout)
}

// readBody returns the value a file holds: a tensor file's map of name to
// array (its metadata inline), or a message's body, its references kept
// as they are.
func readBody(data []byte, ff tensorfile.Format, isMessage bool) (any, error) {
	if isMessage {
		return passThrough.Decode(data)
	}
	file, err := tensorfile.Read(ff, data)
	if err != nil {
		return nil, err
	}
	return file.Body()
}

// watch shows the receivers of tx as they download and confirm, until it
// ends or ctx does.
func watch(ctx context.Context, tx *core.Transaction, receivers int, total int64, prog *cli.Progress, limit time.Duration) error {
	defer prog.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	reported := map[string]bool{}
	show := func(rs []core.ReceiverStatus) {
		for _, r := range rs {
			if reported[r.ID] {
				continue
			}
			if r.State == core.ReceiverConfirmed {
				reported[r.ID] = true
				prog.End(r.ID)
				prog.Printf("%s confirmed: %s\n", r.ID, cli.FormatBytes(r.Bytes))
				continue
			}
			prog.Update(r.ID, r.ID, min(r.Bytes, total), total)
		}
	}
	for {
		select {
		case <-tx.Done():
			out, _ := tx.Outcome()
			show(out.Receivers)
			if err := outcomeError(out, receivers, limit); err != nil {
				return err
			}
			prog.Printf("done: %d of %d receivers confirmed\n", len(out.Confirmed()), receivers)
			return nil
		case <-ctx.Done():
			_, rs := tx.Status()
			n := 0
			for _, r := range rs {
				if r.State == core.ReceiverConfirmed {
					n++
				}
			}
			return fmt.Errorf("%s: %d of %d receivers confirmed", cli.Ended(ctx, limit), n, receivers)
		case <-tick.C:
			_, rs := tx.Status()
			show(rs)
		}
	}
}

// outcomeError says why a transaction ended short of its receivers, or
// returns nil if they all confirmed. limit is serve's -timeout, the
// transaction's inactivity timeout.
func outcomeError(out core.Outcome, receivers int, limit time.Duration) error {
	var how string
	switch out.State {
	case core.StateCompleted:
		return nil
	case core.StateTimedOut:
		how = fmt.Sprintf("timed out after %v without a download", limit)
	case core.StateAborted, core.StateDeleted:
		how = "the transfer was " + out.State.String()
	default:
		how = "the transfer ended: " + out.State.String()
	}
	return fmt.Errorf("%s: %d of %d receivers confirmed", how, len(out.Confirmed()), receivers)
}
