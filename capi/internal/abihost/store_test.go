package abihost

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/viacodec/viacodec/core"
	"github.com/viacodec/viacodec/internal/abi"
	"github.com/viacodec/viacodec/internal/weedtest"
)

// TestPublishToStore: a host with a store (a real S3 engine on loopback)
// publishes through it: the message names the object, the receiver
// downloads bit-exact from the store, and the origin serves no item byte
// (the manifest and the receipt only); the transaction completes.
func TestPublishToStore(t *testing.T) {
	w := weedtest.Start(t)
	w.SetEnv(t)
	tab := abi.NewTable()
	src, srcHost := addHost(t, tab, HostOptions{Name: "source", Store: "s3://" + weedtest.Bucket + "/abihost"})
	agent, _ := addHost(t, tab, HostOptions{Name: "agent"})
	skel, slots, want := refValue(t)
	msg, th := publish(t, tab, src, skel, slots, PublishOptions{Receivers: 1})
	if !bytes.Contains(msg, []byte("object+"+w.Endpoint+"/")) {
		t.Fatalf("the message names no object of the store: %q", msg)
	}
	mustReceive(t, tab, agent, msg, want)
	out, err := use[*Tx](t, tab, th).Wait(int64(30 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if out.State != core.StateCompleted || !slices.Equal(out.Confirmed(), []string{"agent"}) {
		t.Fatalf("outcome %+v", out)
	}
	if served := srcHost.Stats().BytesServed; served != 0 {
		t.Fatalf("the origin served %d item bytes; the store should have", served)
	}
	// An upload grant is for a host that listens on nothing, not one with a store.
	if _, _, err := srcHost.Encode(context.Background(), skel, slots, PublishOptions{Upload: `{"holder":"http://127.0.0.1:1"}`}); core.KindOf(err) != core.KindInvalid || !strings.Contains(err.Error(), "store") {
		t.Fatalf("upload with a store: %v", err)
	}
}

// TestStoreOptionsRefused: a store that is not s3://BUCKET/PREFIX, or on a
// host that listens on nothing, is refused by the check and by NewHost.
func TestStoreOptionsRefused(t *testing.T) {
	for _, c := range []struct {
		o    HostOptions
		want string
	}{
		{HostOptions{Store: "http://127.0.0.1:1/bucket"}, "is not s3://BUCKET/PREFIX"},
		{HostOptions{Store: "s3://"}, "is not s3://BUCKET/PREFIX"},
		{HostOptions{NoListen: true, Store: "s3://bucket/prefix"}, "listens on nothing has no store"},
	} {
		for _, err := range []error{CheckHostOptions(c.o), func() error {
			h, err := NewHost(c.o)
			if err == nil {
				h.Close()
			}
			return err
		}()} {
			if text := abi.Text(err); core.KindOf(err) != core.KindInvalid || !strings.Contains(text, c.want) || strings.Contains(text, "s3store:") {
				t.Errorf("%+v: %v, want %q", c.o, err, c.want)
			}
		}
	}
}
