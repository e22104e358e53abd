package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/uuid"
)

// The golden files under testdata/golden pin the wire format in every
// build; testdata/golden/README.md describes them and their JSON. This file
// writes and checks them: `go test ./core -run TestGolden -args -update`
// rewrites every file from the case tables in golden_cases_test.go, and
// without -update the tests compare bytes.

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// Positive cases lie in goldenDir itself, so that every *.cbor there is a
// deterministic message; lenient and bad cases in subdirectories.
const (
	goldenDir  = "../testdata/golden"
	lenientDir = "lenient/"
	badDir     = "bad/"
)

const goldenUpdateHint = "run: go test ./core -run TestGolden -args -update"

// goldenFile returns the contents the golden file name must have: it writes
// want there first with -update, and fails when the file differs.
func goldenFile(t *testing.T, name string, want []byte) []byte {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (%s)", err, goldenUpdateHint)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s changed (%s):\n file %x\n want %x", name, goldenUpdateHint, clip(got), clip(want))
	}
	return got
}

// clip shortens b for an error message.
func clip(b []byte) []byte {
	if len(b) > 512 {
		return b[:512]
	}
	return b
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			want, err := Marshal(c.value)
			if err != nil {
				t.Fatal(err)
			}
			wantJSON, err := describeMessage(c.desc, c.value)
			if err != nil {
				t.Fatal(err)
			}
			data := goldenFile(t, c.name+".cbor", want)
			goldenFile(t, c.name+".json", wantJSON)

			decoded, err := passThrough.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			gotJSON, err := describeMessage(c.desc, decoded)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotJSON, wantJSON) {
				t.Fatalf("decoded value differs from %s.json:\n got %s\nwant %s", c.name, gotJSON, wantJSON)
			}
			again, err := Marshal(decoded)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Fatalf("decode + encode of %s is not byte-identical:\n got %x\nwant %x", c.name, clip(again), clip(data))
			}
			checkGeneric(t, data)
		})
	}
}

// checkGeneric checks that a decoder we did not write parses the message
// (fxamacker/cbor; the Python tests run cbor2 as well).
func checkGeneric(t *testing.T, data []byte) {
	t.Helper()
	if err := genericDecMode.Wellformed(data); err != nil {
		t.Fatalf("fxamacker/cbor: not well-formed: %v", err)
	}
	var generic any
	if err := genericDecMode.Unmarshal(data, &generic); err != nil {
		t.Fatalf("fxamacker/cbor cannot decode it: %v", err)
	}
}

// genericDecMode is a strict fxamacker/cbor decoder: duplicate keys,
// indefinite lengths and invalid UTF-8 rejected, nesting as deep as
// viacodec's default MaxDepth allows, bignums as *big.Int (which, unlike
// big.Int, can be a map key).
var genericDecMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		MaxNestedLevels: 256,
		DupMapKey:       cbor.DupMapKeyEnforcedAPF,
		IndefLength:     cbor.IndefLengthForbidden,
		UTF8:            cbor.UTF8RejectInvalid,
		BigIntDec:       cbor.BigIntDecodePointer,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

func TestGoldenLenient(t *testing.T) {
	twins := map[string]goldenCase{}
	for _, c := range goldenCases(t) {
		twins[c.name] = c
	}
	for _, c := range lenientCases(t) {
		t.Run(c.name, func(t *testing.T) {
			twin, ok := twins[c.twin]
			if !ok {
				t.Fatalf("twin %q is not a golden case", c.twin)
			}
			side, err := writeJSON(jobj{{"description", c.desc}, {"twin", c.twin}})
			if err != nil {
				t.Fatal(err)
			}
			data := goldenFile(t, lenientDir+c.name+".lenient.cbor", c.data)
			goldenFile(t, lenientDir+c.name+".lenient.json", side)

			twinData, err := os.ReadFile(filepath.Join(goldenDir, c.twin+".cbor"))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(data, twinData) {
				t.Fatal("the lenient form is its twin's deterministic form")
			}
			twinJSON, err := os.ReadFile(filepath.Join(goldenDir, c.twin+".json"))
			if err != nil {
				t.Fatal(err)
			}
			decoded, err := passThrough.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			gotJSON, err := describeMessage(twin.desc, decoded)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotJSON, twinJSON) {
				t.Fatalf("decodes differently from %s.json:\n got %s\nwant %s", c.twin, gotJSON, twinJSON)
			}
			again, err := Marshal(decoded)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, twinData) {
				t.Fatalf("re-encodes to\n %x\nnot the bytes of %s.cbor\n %x", clip(again), c.twin, clip(twinData))
			}
			checkGeneric(t, data)
		})
	}
}

func TestGoldenBad(t *testing.T) {
	for _, c := range badCases(t) {
		t.Run(c.name, func(t *testing.T) {
			var offset any // JSON null: no offset applies
			if c.offset >= 0 {
				offset = c.offset
			}
			side, err := writeJSON(jobj{{"description", c.desc}, {"kind", c.kind.String()}, {"offset", offset}, {"options", c.opts.json()}})
			if err != nil {
				t.Fatal(err)
			}
			data := goldenFile(t, badDir+c.name+".bad.cbor", c.data)
			goldenFile(t, badDir+c.name+".bad.json", side)

			m, err := c.opts.decOptions().DecMode()
			if err != nil {
				t.Fatal(err)
			}
			v, err := m.Decode(data)
			var e *Error
			if !errors.As(err, &e) || v != nil {
				t.Fatalf("got %v, %v; want a *core.Error and no value", v, err)
			}
			if e.Kind != c.kind || e.Offset != int64(c.offset) {
				t.Fatalf("got kind %v at offset %d (%v); want %v at %d", e.Kind, e.Offset, err, c.kind, c.offset)
			}
			if !errors.Is(err, sentinels[c.kind]) || !strings.HasPrefix(err.Error(), "core: ") {
				t.Fatalf("error %q: not its kind's sentinel, or no package prefix", err)
			}
		})
	}
}

// TestGoldenDirectory checks that every file under testdata/golden belongs
// to a case, so that a renamed or dropped case leaves nothing behind;
// -update removes such files.
func TestGoldenDirectory(t *testing.T) {
	want := map[string]bool{"README.md": true, "lenient": true, "bad": true}
	for _, c := range goldenCases(t) {
		want[c.name+".cbor"], want[c.name+".json"] = true, true
	}
	for _, c := range lenientCases(t) {
		want[lenientDir+c.name+".lenient.cbor"], want[lenientDir+c.name+".lenient.json"] = true, true
	}
	for _, c := range badCases(t) {
		want[badDir+c.name+".bad.cbor"], want[badDir+c.name+".bad.json"] = true, true
	}
	for _, dir := range []string{"", lenientDir, badDir} {
		entries, err := os.ReadDir(filepath.Join(goldenDir, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if want[dir+e.Name()] {
				continue
			}
			if *update {
				if err := os.Remove(filepath.Join(goldenDir, dir, e.Name())); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Errorf("testdata/golden/%s%s belongs to no case (%s)", dir, e.Name(), goldenUpdateHint)
		}
	}
}

// TestGoldenDocs checks the table of golden cases in docs/wire-format.md:
// every case appears in it, every case it names exists, and every section
// the table lists has at least one case. It also checks the example of §7
// against its golden file.
func TestGoldenDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/wire-format.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "\n## Appendix A. Golden files")
	if start < 0 {
		t.Fatal(`docs/wire-format.md has no "## Appendix A. Golden files"`)
	}
	exists := map[string]bool{}
	for _, c := range goldenCases(t) {
		exists[c.name] = true
	}
	for _, c := range lenientCases(t) {
		exists[c.name+".lenient"] = true
	}
	for _, c := range badCases(t) {
		exists[c.name+".bad"] = true
	}
	row := regexp.MustCompile("(?m)^\\| §([0-9.]+)[^|]*\\|(.*)\\|\\s*$")
	name := regexp.MustCompile("`([a-z0-9.-]+)`")
	listed := map[string]bool{}
	sections := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(text[start:], -1) {
		cases := name.FindAllStringSubmatch(m[2], -1)
		if len(cases) == 0 {
			t.Errorf("§%s lists no golden case", m[1])
		}
		sections[m[1]] = true
		for _, c := range cases {
			if !exists[c[1]] {
				t.Errorf("§%s names %q, which is no golden case", m[1], c[1])
			}
			listed[c[1]] = true
		}
	}
	for c := range exists {
		if !listed[c] {
			t.Errorf("golden case %q is in no row of Appendix A", c)
		}
	}
	// Every numbered section of the document (but the references) has a row.
	heading := regexp.MustCompile(`(?m)^#{2,3} ([0-9]+(?:\.[0-9]+)?)\.? `)
	for _, m := range heading.FindAllStringSubmatch(text[:start], -1) {
		sec := m[1]
		if sec == "9" || sections[sec] {
			continue
		}
		if hasSubsections(text[:start], sec) {
			continue // covered through its subsections
		}
		t.Errorf("§%s has no row in Appendix A", sec)
	}

	// §7's hex dump is the example golden file.
	ex := regexp.MustCompile("encodes to these [0-9]+ bytes:\n\n```\n([0-9a-f\n]+)```").FindStringSubmatch(text)
	if ex == nil {
		t.Fatal("§7 has no hex dump")
	}
	dump, err := hex.DecodeString(strings.ReplaceAll(ex[1], "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(goldenDir, "example.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dump, file) {
		t.Fatalf("§7's hex dump is not example.cbor:\n doc  %x\n file %x", dump, file)
	}
}

// hasSubsections reports whether section sec ("3") has numbered
// subsections ("3.1") in text.
func hasSubsections(text, sec string) bool {
	if strings.Contains(sec, ".") {
		return false
	}
	return regexp.MustCompile(`(?m)^### ` + regexp.QuoteMeta(sec) + `\.[0-9]+ `).MatchString(text)
}

// ---- The JSON description of a decoded value (testdata/golden/README.md) ----

// jobj is a JSON object whose members keep their order.
type jobj []jmember

type jmember struct {
	key string
	val any
}

// describeMessage returns the JSON file of a golden case: its description,
// the body's value and the batch descriptors its ref nodes use.
func describeMessage(desc string, body any) ([]byte, error) {
	d := &describer{}
	v, err := d.value(body)
	if err != nil {
		return nil, err
	}
	batches := make([]any, len(d.batches))
	for i, b := range d.batches {
		o := jobj{
			{"source", b.Source}, {"ref_id", hex.EncodeToString(b.RefID[:])}, {"token", hex.EncodeToString(b.Token[:])},
			{"items", b.Items}, {"bytes", b.Bytes},
		}
		if b.Holder != "" {
			o = append(o, jmember{"holder", b.Holder})
		}
		batches[i] = o
	}
	return writeJSON(jobj{{"description", desc}, {"value", v}, {"batches", batches}})
}

// describer turns a value of the value model into its JSON description.
// It walks maps in wire order (keys sorted by their encoding), so that it
// numbers batches as an encoder does: in order of first reference.
type describer struct {
	batches []BatchRef
	index   map[uuid.UUID]int
}

func (d *describer) value(v any) (any, error) {
	switch v := v.(type) {
	case nil:
		return jobj{{"type", "null"}}, nil
	case bool:
		return jobj{{"type", "bool"}, {"value", v}}, nil
	case int:
		return describeInt(strconv.FormatInt(int64(v), 10)), nil
	case int64:
		return describeInt(strconv.FormatInt(v, 10)), nil
	case uint64:
		return describeInt(strconv.FormatUint(v, 10)), nil
	case *big.Int:
		return describeInt(v.String()), nil
	case Float16:
		return describeFloat(16, fmt.Sprintf("%04x", uint16(v))), nil
	case float32:
		return describeFloat(32, fmt.Sprintf("%08x", math.Float32bits(v))), nil
	case float64:
		return describeFloat(64, fmt.Sprintf("%016x", math.Float64bits(v))), nil
	case string:
		return jobj{{"type", "text"}, {"value", v}}, nil
	case []byte:
		return jobj{{"type", "bytes"}, {"hex", hex.EncodeToString(v)}}, nil
	case []any:
		items := make([]any, len(v))
		for i, x := range v {
			var err error
			if items[i], err = d.value(x); err != nil {
				return nil, err
			}
		}
		return jobj{{"type", "list"}, {"items", items}}, nil
	case map[string]any:
		entries := jobj{}
		for _, k := range sortedKeys(v) {
			x, err := d.value(v[k])
			if err != nil {
				return nil, err
			}
			entries = append(entries, jmember{k, x})
		}
		return jobj{{"type", "map"}, {"entries", entries}}, nil
	case Map:
		return d.pairs(v)
	case *Array:
		sum := sha256.Sum256(v.Data)
		return jobj{
			{"type", "array"}, {"dtype", v.DType.String()}, {"shape", jsonDims(v.Shape)},
			{"order", describeOrder(v.Shape, v.Order)}, {"sha256", hex.EncodeToString(sum[:])},
		}, nil
	case *LazyRef:
		i, err := d.batch(v.Batch)
		if err != nil {
			return nil, err
		}
		return jobj{
			{"type", "ref"}, {"batch", i}, {"item", v.Item}, {"dtype", v.DType.String()},
			{"shape", jsonDims(v.Shape)}, {"order", describeOrder(v.Shape, v.Order)},
		}, nil
	case Object:
		data, err := d.value(v.Data)
		if err != nil {
			return nil, err
		}
		return jobj{{"type", "object"}, {"name", v.Name}, {"data", data}}, nil
	}
	return nil, fmt.Errorf("golden: cannot describe %T", v)
}

// pairs describes a map with non-text keys, its pairs sorted by their
// encoded keys (the order in which a deterministic message holds them).
func (d *describer) pairs(m Map) (any, error) {
	type enc struct {
		key []byte
		p   Pair
	}
	sorted := make([]enc, len(m))
	for i, p := range m {
		k, err := appendKey(nil, p.Key)
		if err != nil {
			return nil, err
		}
		sorted[i] = enc{k, p}
	}
	slices.SortFunc(sorted, func(a, b enc) int { return bytes.Compare(a.key, b.key) })
	pairs := make([]any, len(sorted))
	for i, e := range sorted {
		k, err := d.value(e.p.Key)
		if err != nil {
			return nil, err
		}
		v, err := d.value(e.p.Value)
		if err != nil {
			return nil, err
		}
		pairs[i] = []any{k, v}
	}
	return jobj{{"type", "pairs"}, {"pairs", pairs}}, nil
}

// batch returns the index of b among the batches met so far, adding it.
func (d *describer) batch(b BatchRef) (int, error) {
	if d.index == nil {
		d.index = map[uuid.UUID]int{}
	}
	if i, ok := d.index[b.RefID]; ok {
		if d.batches[i] != b {
			return 0, fmt.Errorf("golden: two descriptors for ref id %s", b.RefID)
		}
		return i, nil
	}
	d.batches = append(d.batches, b)
	d.index[b.RefID] = len(d.batches) - 1
	return len(d.batches) - 1, nil
}

func describeInt(decimal string) jobj { return jobj{{"type", "int"}, {"value", decimal}} }

func describeFloat(width int, bits string) jobj {
	return jobj{{"type", "float"}, {"width", width}, {"bits", bits}}
}

// describeOrder is "F" for a column-major array whose layout the order
// changes (two or more dimensions longer than 1, none 0), "C" otherwise:
// the order every build decodes (docs/wire-format.md §3.3).
func describeOrder(shape []int, o Order) string {
	long := 0
	for _, d := range shape {
		if d == 0 {
			return "C"
		}
		if d > 1 {
			long++
		}
	}
	if o == ColumnMajor && long >= 2 {
		return "F"
	}
	return "C"
}

func jsonDims(shape []int) []any {
	out := make([]any, len(shape))
	for i, d := range shape {
		out[i] = d
	}
	return out
}

// writeJSON writes v (jobj, []any, string, bool, nil and integers) as
// indented JSON; a value that fits on one line of 120 columns stays on it,
// and so does anything nested deeper than 12 levels.
func writeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := writeJSONValue(&b, v, ""); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

func writeJSONValue(b *bytes.Buffer, v any, indent string) error {
	var flat bytes.Buffer
	if err := writeJSONFlat(&flat, v); err != nil {
		return err
	}
	o, isObj := v.(jobj)
	l, isList := v.([]any)
	fits := len(indent)+flat.Len() <= 120 || len(indent) >= 24 // deeper than 12 levels: one line
	if fits || (!isObj && !isList) || (isObj && len(o) == 0) || (isList && len(l) == 0) {
		b.Write(flat.Bytes())
		return nil
	}
	inner := indent + "  "
	if isObj {
		b.WriteString("{\n")
		for i, m := range o {
			b.WriteString(inner)
			if err := writeJSONFlat(b, m.key); err != nil {
				return err
			}
			b.WriteString(": ")
			if err := writeJSONValue(b, m.val, inner); err != nil {
				return err
			}
			if i < len(o)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "}")
		return nil
	}
	b.WriteString("[\n")
	for i, x := range l {
		b.WriteString(inner)
		if err := writeJSONValue(b, x, inner); err != nil {
			return err
		}
		if i < len(l)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(indent + "]")
	return nil
}

func writeJSONFlat(b *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case jobj:
		b.WriteByte('{')
		for i, m := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := writeJSONFlat(b, m.key); err != nil {
				return err
			}
			b.WriteString(": ")
			if err := writeJSONFlat(b, m.val); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := writeJSONFlat(b, x); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case string:
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case int:
		b.WriteString(strconv.Itoa(v))
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	default:
		return fmt.Errorf("golden: cannot write %T as JSON", v)
	}
	return nil
}
