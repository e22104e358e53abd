package hostdl

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/viacodec/viacodec/core"
)

// ServerStats are a Server's counters, as its metrics endpoint reports them.
type ServerStats struct {
	BytesServed   int64         // item bytes written to receivers
	ConnsOpen     int64         // connections open now
	ConnsShed     int64         // connections closed to make room, or refused over MaxConnsPerClient
	InFlightBytes int64         // item bytes of responses being written now
	Requests      map[int]int64 // requests answered, by HTTP status
	HTTP2Requests int64         // requests that came over HTTP/2
	Table         core.Stats    // the table's counters: open transactions, active receivers
}

type metrics struct {
	bytesServed atomic.Int64
	connsOpen   atomic.Int64
	connsShed   atomic.Int64
	http2       atomic.Int64

	mu       sync.Mutex
	requests map[int]int64
}

func (m *metrics) request(status, protoMajor int) {
	if protoMajor == 2 {
		m.http2.Add(1)
	}
	m.mu.Lock()
	if m.requests == nil {
		m.requests = map[int]int64{}
	}
	m.requests[status]++
	m.mu.Unlock()
}

func (m *metrics) requestsByStatus() map[int]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.requests)
}

// writeMetrics writes st in the Prometheus text format.
func writeMetrics(w io.Writer, st ServerStats) {
	metric := func(name, typ, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	metric("hostdl_bytes_served_total", "counter", "Item bytes written to receivers.", st.BytesServed)
	metric("hostdl_transactions_open", "gauge", "Open transactions in the table.", int64(st.Table.Open))
	metric("hostdl_receivers_active", "gauge", "Receivers started and not yet confirmed.", int64(st.Table.ReceiversActive))
	metric("hostdl_connections_open", "gauge", "Connections open now.", st.ConnsOpen)
	metric("hostdl_connections_shed_total", "counter", "Connections closed to make room, or refused over the per-client cap.", st.ConnsShed)
	metric("hostdl_inflight_bytes", "gauge", "Item bytes of responses being written now.", st.InFlightBytes)
	metric("hostdl_http2_requests_total", "counter", "Requests that came over HTTP/2.", st.HTTP2Requests)
	fmt.Fprintf(w, "# HELP hostdl_requests_total Requests answered, by status.\n# TYPE hostdl_requests_total counter\n")
	for _, code := range slices.Sorted(maps.Keys(st.Requests)) {
		fmt.Fprintf(w, "hostdl_requests_total{code=\"%d\"} %d\n", code, st.Requests[code])
	}
}

// statusWriter records a response's status; Unwrap keeps
// http.ResponseController working through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// ReadFrom keeps the ReadFrom of net/http's response, which hands a
// net.Buffers to the connection's writev (handleItem's pieces).
func (w *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
