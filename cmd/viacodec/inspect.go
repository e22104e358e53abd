package main

import (
	"bufio"
	"cmp"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/big"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cli"
	"github.com/viacodec/viacodec/core"
)

// runInspect prints a message in diagnostic notation, then a summary of
// its batches, inline arrays and lazy refs. It decodes in pass-through
// mode, so nothing is downloaded.
func runInspect(args []string) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	width := fs.Int("width", 100, "break lists and maps over lines past column `N`; 0 for one line")
	files, err := cli.ParseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return cli.Usagef("expects one message FILE, or - for standard input")
	}
	if *width < 0 {
		return cli.Usagef("-width %d is negative", *width)
	}
	in := files[0]
	data, err := readInput(in)
	if err != nil {
		return err
	}
	body, err := passThrough.Decode(data)
	if err != nil {
		return decodeError(in, data, err)
	}
	diag, err := core.Diagnose(data, core.DiagOptions{Width: *width})
	if err != nil {
		return fmt.Errorf("%s: %w", displayName(in), err)
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, diag)
	fmt.Fprintln(w)
	writeSummary(w, len(data), summarize(body))
	return w.Flush()
}

// arrayEntry is one array of a message: inline, or a lazy ref.
type arrayEntry struct {
	path  string
	dtype core.DType
	shape []int
	order core.Order
	bytes int64
	ref   *core.LazyRef // nil for an inline array
}

// summary lists a message's arrays in the order the body is written, and
// its batches in the order of their first reference.
type summary struct {
	arrays  []arrayEntry
	batches []core.BatchRef
	index   map[[16]byte]int // ref id → position in batches
}

func summarize(body any) *summary {
	s := &summary{index: map[[16]byte]int{}}
	s.walk(body, "")
	return s
}

func (s *summary) walk(v any, path string) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range wireOrder(v) {
			s.walk(v[k], path+textKeyPath(k, path == ""))
		}
	case core.Map:
		for _, p := range v {
			if k, ok := p.Key.(string); ok {
				s.walk(p.Value, path+textKeyPath(k, path == ""))
			} else {
				s.walk(p.Value, path+"["+keyNotation(p.Key)+"]")
			}
		}
	case []any:
		for i, x := range v {
			s.walk(x, path+"["+strconv.Itoa(i)+"]")
		}
	case core.Object:
		s.walk(v.Data, path+"("+v.Name+")")
	case *core.Array:
		s.arrays = append(s.arrays, arrayEntry{path: path, dtype: v.DType, shape: v.Shape, order: v.Order, bytes: int64(len(v.Data))})
	case *core.LazyRef:
		if _, ok := s.index[v.Batch.RefID]; !ok {
			s.index[v.Batch.RefID] = len(s.batches)
			s.batches = append(s.batches, v.Batch)
		}
		s.arrays = append(s.arrays, arrayEntry{path: path, dtype: v.DType, shape: v.Shape, order: v.Order, bytes: v.Bytes(), ref: v})
	}
}

// wireOrder returns m's keys in the order a message writes them (RFC 8949
// §4.2.1: by encoded bytes, so shorter text first, then bytewise), which
// is the order in which the body first refers to each batch.
func wireOrder(m map[string]any) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	})
	return keys
}

// textKeyPath is a text key as a step of a path: .name (name alone at the
// root), or ["…"] when the key is empty or holds spaces, quotes, brackets
// or parentheses. Dots stay, as in the tensor names of PyTorch models.
func textKeyPath(k string, root bool) string {
	plain := k != "" && !strings.ContainsFunc(k, func(r rune) bool {
		return !unicode.IsPrint(r) || unicode.IsSpace(r) || strings.ContainsRune(`"'[]()`, r)
	})
	switch {
	case !plain:
		return "[" + strconv.Quote(k) + "]"
	case root:
		return k
	}
	return "." + k
}

// keyNotation writes a map key that is not text in diagnostic notation.
func keyNotation(k any) string {
	switch k := k.(type) {
	case []byte:
		return "h'" + hex.EncodeToString(k) + "'"
	case nil:
		return "null"
	case *big.Int:
		return k.String()
	}
	return fmt.Sprint(k) // integers, bools
}

// shortToken shows the first two bytes of a capability token, as
// core.Diagnose does.
func shortToken(t [core.TokenSize]byte) string {
	return hex.EncodeToString(t[:2]) + "…"
}

func shapeNotation(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func writeSummary(w io.Writer, size int, s *summary) {
	var inline, lazy []arrayEntry
	var inlineBytes, lazyBytes int64
	for _, a := range s.arrays {
		if a.ref == nil {
			inline, inlineBytes = append(inline, a), inlineBytes+a.bytes
		} else {
			lazy, lazyBytes = append(lazy, a), lazyBytes+a.bytes
		}
	}
	parts := []string{"no inline arrays"}
	if len(inline) > 0 {
		parts[0] = fmt.Sprintf("%s inline (%d bytes)", cli.Plural(len(inline), "array"), inlineBytes)
	}
	if len(lazy) > 0 {
		parts = append(parts, fmt.Sprintf("%s (%d bytes) in %s", cli.Plural(len(lazy), "lazy ref"), lazyBytes, cli.Plural(len(s.batches), "batch")))
	} else {
		parts = append(parts, "no lazy refs")
	}
	fmt.Fprintf(w, "message: %d bytes; %s\n", size, strings.Join(parts, "; "))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(s.batches) > 0 {
		fmt.Fprintln(w, "\nbatches, in order of first reference:")
		fmt.Fprintln(tw, "  #\tSOURCE\tREF ID\tTOKEN\tITEMS\tBYTES")
		for i, b := range s.batches {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\t%d\n", i, b.Source, b.RefID, shortToken(b.Token), b.Items, b.Bytes)
		}
		tw.Flush()
	}
	if len(inline) > 0 {
		fmt.Fprintln(w, "\ninline arrays:")
		fmt.Fprintln(tw, "  PATH\tDTYPE\tSHAPE\tORDER\tBYTES")
		for _, a := range inline {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\n", a.path, a.dtype, shapeNotation(a.shape), a.order, a.bytes)
		}
		tw.Flush()
	}
	if len(lazy) > 0 {
		fmt.Fprintln(w, "\nlazy refs (not downloaded):")
		fmt.Fprintln(tw, "  PATH\tDTYPE\tSHAPE\tORDER\tBYTES\tBATCH\tITEM")
		for _, a := range lazy {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%d\n", a.path, a.dtype, shapeNotation(a.shape), a.order, a.bytes, s.index[a.ref.Batch.RefID], a.ref.Item)
		}
		tw.Flush()
	}
}
