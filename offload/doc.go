// Package offload lands the arrays of a decoded message in a file instead
// of memory: a receiver can take messages bigger than its RAM.
//
// The file is a safetensors file (internal/tensorfile's layout): its
// header is written first, the file is reserved on disk at its full size
// (so a full disk is an error before anything downloads, never a fault
// in the middle), and every array lands straight in it: a download
// writes each checked piece with pwrite (File.Writer, as
// core.FetchItem.File), and its writeback starts at once; inline arrays,
// and a Fetcher that writes memory, go through a shared mapping of the
// file (File.Slot). No array-sized buffer passes through memory. The
// decoded value's arrays then view the file through that mapping, made
// read-only; closing the value removes the file unless it is kept. A
// file that failed to fill is removed: no half-written file is left
// behind, nor presented as complete.
//
// While the file fills, the pages written through the mapping are
// dropped from the process's resident set every few milliseconds (they
// stay in the kernel's page cache, and on disk), so the receiver's
// resident memory does not grow with the model.
//
// Each array is named in the file by its path in the message ("model.w"
// for {"model": {"w": array}}); a dtype safetensors has no name for, or a
// column-major array, is described in the header's __metadata__, under
// "viacodec:<name>".
//
// Files: offload.go (Options, File), value.go (Decode, Place, Value),
// names.go (the tensor names), mmap_linux.go (the mapping; other systems
// get an error).
package offload
