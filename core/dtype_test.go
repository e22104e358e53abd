package core

import (
	"errors"
	"testing"
)

// TestParseDType: every dtype's name, and only it, parses to the dtype;
// a name one byte off, cut short, padded or too long is refused.
func TestParseDType(t *testing.T) {
	for d := DTypeBool; d < dtypeCount; d++ {
		name := d.String()
		if got, err := ParseDType(name); err != nil || got != d {
			t.Fatalf("ParseDType(%q) = %v, %v; want %v", name, got, err, d)
		}
		for _, bad := range []string{name[:len(name)-1], name + "\x00", "\x00" + name, name + "x", name[1:]} {
			if got, err := ParseDType(bad); !errors.Is(err, ErrInvalid) || got != DTypeInvalid {
				if bad != "" && got.String() == bad {
					continue // another dtype's name (none is today)
				}
				t.Fatalf("ParseDType(%q) = %v, %v; want KindInvalid", bad, got, err)
			}
		}
		for i := range name {
			b := []byte(name)
			b[i] ^= 1
			if got := dtypeNamed(b); got != DTypeInvalid && got.String() != string(b) {
				t.Fatalf("dtypeNamed(%q) = %v", b, got)
			}
		}
	}
	for _, bad := range []string{"", "float8_e4m3fnuz!!", "Float32", "float32 "} {
		if _, err := ParseDType(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParseDType(%q): %v, want KindInvalid", bad, err)
		}
	}
}

// TestCanonicalKey: where canonicalKey takes a map key's bytes as its
// encoding, they are what appendKey writes for the key's value; it takes
// every shortest integer, byte and text key, and no other.
func TestCanonicalKey(t *testing.T) {
	for _, c := range []struct {
		hex  string
		take bool
	}{
		{"00", true}, {"17", true}, {"1818", true}, {"1817", false}, {"1900ff", false}, {"190100", true},
		{"1a0000ffff", false}, {"1a00010000", true}, {"1b00000000ffffffff", false}, {"1b0000000100000000", true},
		{"1bffffffffffffffff", true}, {"20", true}, {"3b7fffffffffffffff", true}, {"3b8000000000000000", false},
		{"40", true}, {"4161", true}, {"580161", false}, {"6161", true}, {"780161", false}, {"6461626364", true},
		{"f5", false}, {"f6", false}, {"c24101", false}, {"80", false}, {"19", false}, {"6261", false},
	} {
		b := unhex(t, c.hex)
		end, ok := canonicalKey(b, 0)
		if ok != c.take || ok && end != len(b) {
			t.Fatalf("canonicalKey(%s) = %d, %v; want %v", c.hex, end, ok, c.take)
		}
		if !ok {
			continue
		}
		d := &decoder{mode: MustMode(DecOptions{}.DecMode())}
		d.r.Data = b
		k, err := d.value()
		if err != nil {
			t.Fatal(err)
		}
		if enc, err := appendKey(nil, k); err != nil || string(enc) != string(b) {
			t.Fatalf("%s: appendKey gives %x, %v", c.hex, enc, err)
		}
	}
}
