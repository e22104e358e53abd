package s3store

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/viacodec/viacodec/internal/weedtest"
)

const (
	testAccess = weedtest.AccessKey
	testSecret = weedtest.SecretKey
	testBucket = weedtest.Bucket
)

type weed = weedtest.Weed

var (
	sharedOnce sync.Once
	sharedW    *weedtest.Weed
	sharedErr  error
	sharedDir  string
)

// sharedWeed returns the weed mini the package's tests share, started on
// first use; TestMain stops it.
func sharedWeed(t testing.TB) *weedtest.Weed {
	bin := weedtest.Binary(t)
	sharedOnce.Do(func() {
		if sharedDir, sharedErr = os.MkdirTemp("", "viacodec-weed-"); sharedErr == nil {
			sharedW, sharedErr = weedtest.Launch(bin, sharedDir)
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedW
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedW != nil {
		if err := sharedW.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

// startWeed starts a weed mini of the test's own.
func startWeed(t testing.TB) *weedtest.Weed { return weedtest.Start(t) }
