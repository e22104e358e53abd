"""Every foreign function viacodec calls, declared in one place.

The shared library libviacodec.so (built by ``make python`` from capi/)
ships inside the package; the environment variable VIACODEC_LIBRARY
overrides its path. It is loaded on first use, so that ``import viacodec``
works without it; a missing library raises FileNotFoundError then.

Every declaration below carries its C prototype (from libviacodec.h).
Functions that return a status (a core.Kind; 0 is success) end with a
``vc_error*`` argument and have an errcheck that turns a failure into the
exception of that kind, with the library's message and offset, freeing
the message with vc_free.

ctypes.CDLL releases the GIL during each call, so threads run codec calls
in parallel; the library is safe for that.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from ctypes import POINTER, Structure, byref, c_char_p, c_int32, c_int64, c_uint64, c_void_p
from typing import Any, List, Optional, Tuple

import numpy as np

from ._errors import ForkedProcessError, InvalidError, error_for, python_text

#: The environment variable that overrides the library's path.
LIBRARY_ENV = "VIACODEC_LIBRARY"

#: The VC_ABI_VERSION this module was written for.
ABI_VERSION = 16


class VcError(Structure):
    """typedef struct vc_error { char* msg; int64_t offset; } vc_error;"""

    _fields_ = [("msg", c_void_p), ("offset", c_int64)]


class VcSlot(Structure):
    """typedef struct vc_slot { void* data; uint64_t nbytes; int32_t dtype;
    int32_t order; int32_t ndim; int32_t flags; const int64_t* shape; } vc_slot;"""

    _fields_ = [
        ("data", c_void_p),
        ("nbytes", c_uint64),
        ("dtype", c_int32),
        ("order", c_int32),
        ("ndim", c_int32),
        ("flags", c_int32),
        ("shape", POINTER(c_int64)),
    ]


#: numpy's view of a vc_slot, to build and read slot tables column by
#: column instead of field by field (same layout as VcSlot).
SLOT_DTYPE = np.dtype(
    [
        ("data", "<u8"),
        ("nbytes", "<u8"),
        ("dtype", "<i4"),
        ("order", "<i4"),
        ("ndim", "<i4"),
        ("flags", "<i4"),
        ("shape", "<u8"),
    ]
)

#: VC_SLOT_REF: a descriptor's flag for a slot that is downloaded
SLOT_REF = 1


class VcEncOptions(Structure):
    """typedef struct vc_enc_options { int64_t max_depth; } vc_enc_options;"""

    _fields_ = [("max_depth", c_int64)]


class VcDecOptions(Structure):
    """typedef struct vc_dec_options { int64_t max_depth, max_elements,
    max_byte_len, max_message_size, max_array_bytes, bytes_slot_min,
    pass_through, array_slot_min; } vc_dec_options;"""

    _fields_ = [
        ("max_depth", c_int64),
        ("max_elements", c_int64),
        ("max_byte_len", c_int64),
        ("max_message_size", c_int64),
        ("max_array_bytes", c_int64),
        ("bytes_slot_min", c_int64),
        ("pass_through", c_int64),
        ("array_slot_min", c_int64),
    ]


def option_text(v: Any, what: str) -> Optional[bytes]:
    """An option's text as an options struct takes it: None, or a
    non-empty string without NUL, in UTF-8."""
    if v is None:
        return None
    if not isinstance(v, str) or "\0" in v or not v:
        raise InvalidError(f"viacodec: {what} {v!r} is not a non-empty string")
    return v.encode("utf-8")


class VcHostOptions(Structure):
    """typedef struct vc_host_options { const char* listen, *name, *advertise,
    *tls_cert_file, *tls_key_file, *tls_ca_file; int32_t tls_client_auth,
    allow_cleartext, http2; int64_t ref_threshold, concurrency, chunk_size;
    const char* default_name; int32_t no_listen; int64_t request_timeout_ns,
    retries; const char* store; } vc_host_options;"""

    _fields_ = [
        ("listen", c_char_p),
        ("name", c_char_p),
        ("advertise", c_char_p),
        ("tls_cert_file", c_char_p),
        ("tls_key_file", c_char_p),
        ("tls_ca_file", c_char_p),
        ("tls_client_auth", c_int32),
        ("allow_cleartext", c_int32),
        ("http2", c_int32),
        ("ref_threshold", c_int64),
        ("concurrency", c_int64),
        ("chunk_size", c_int64),
        ("default_name", c_char_p),
        ("no_listen", c_int32),
        ("request_timeout_ns", c_int64),
        ("retries", c_int64),
        ("store", c_char_p),
        ("trusted_hops", POINTER(c_char_p)),
        ("trusted_hops_len", c_int64),
    ]


class VcLimits(Structure):
    """typedef struct vc_limits { int64_t max_depth_default, max_depth_limit,
    max_dims; } vc_limits;"""

    _fields_ = [
        ("max_depth_default", c_int64),
        ("max_depth_limit", c_int64),
        ("max_dims", c_int64),
    ]


class VcPublishOptions(Structure):
    """typedef struct vc_publish_options { int64_t max_depth, ref_threshold,
    receivers, quorum; const char* const* names; int64_t names_len,
    max_receivers, timeout_ns; int32_t snapshot, reserved; const char* upload;
    int64_t cancel; } vc_publish_options;"""

    _fields_ = [
        ("max_depth", c_int64),
        ("ref_threshold", c_int64),
        ("receivers", c_int64),
        ("quorum", c_int64),
        ("names", POINTER(c_char_p)),
        ("names_len", c_int64),
        ("max_receivers", c_int64),
        ("timeout_ns", c_int64),
        ("snapshot", c_int32),
        ("reserved", c_int32),
        ("upload", c_char_p),
        ("cancel", c_int64),
    ]


class VcReceiverStatus(Structure):
    """typedef struct vc_receiver_status { const char* id; int32_t state,
    reserved; int64_t bytes, first_seen_ns, last_seen_ns; } vc_receiver_status;"""

    _fields_ = [
        ("id", c_char_p),
        ("state", c_int32),
        ("reserved", c_int32),
        ("bytes", c_int64),
        ("first_seen_ns", c_int64),
        ("last_seen_ns", c_int64),
    ]


class VcOutcome(Structure):
    """typedef struct vc_outcome { int32_t state, ended; int64_t nreceivers;
    vc_receiver_status* receivers; const char* ref_id; } vc_outcome;"""

    _fields_ = [
        ("state", c_int32),
        ("ended", c_int32),
        ("nreceivers", c_int64),
        ("receivers", POINTER(VcReceiverStatus)),
        ("ref_id", c_char_p),
    ]


class VcHostCounters(Structure):
    """typedef struct vc_host_counters { int64_t bytes_served, requests,
    open_transactions, receivers_active, conns_open; } vc_host_counters;"""

    _fields_ = [
        ("bytes_served", c_int64),
        ("requests", c_int64),
        ("open_transactions", c_int64),
        ("receivers_active", c_int64),
        ("conns_open", c_int64),
    ]


class VcRelayOptions(Structure):
    """typedef struct vc_relay_options { const char* listen, *advertise,
    *tls_cert_file, *tls_key_file, *tls_ca_file; int32_t tls_client_auth,
    allow_cleartext; int64_t budget; const char* spill_dir; } vc_relay_options;"""

    _fields_ = [
        ("listen", c_char_p),
        ("advertise", c_char_p),
        ("tls_cert_file", c_char_p),
        ("tls_key_file", c_char_p),
        ("tls_ca_file", c_char_p),
        ("tls_client_auth", c_int32),
        ("allow_cleartext", c_int32),
        ("budget", c_int64),
        ("spill_dir", c_char_p),
    ]


class VcRelayCounters(Structure):
    """typedef struct vc_relay_counters { int64_t batches, held_bytes,
    peak_bytes, upstream_bytes, upstream_pieces, spilled_bytes, refused,
    bytes_served; } vc_relay_counters;"""

    _fields_ = [
        ("batches", c_int64),
        ("held_bytes", c_int64),
        ("peak_bytes", c_int64),
        ("upstream_bytes", c_int64),
        ("upstream_pieces", c_int64),
        ("spilled_bytes", c_int64),
        ("refused", c_int64),
        ("bytes_served", c_int64),
    ]


def library_path() -> str:
    """The path the library is loaded from: $VIACODEC_LIBRARY, or
    libviacodec.so inside the package."""
    return os.environ.get(LIBRARY_ENV) or os.path.join(os.path.dirname(os.path.abspath(__file__)), "libviacodec.so")


class Library:
    """libviacodec.so with its functions declared.

    The vc_* attributes are the raw foreign functions; the methods without
    the prefix wrap those with out-parameters.
    """

    def __init__(self, path: str) -> None:
        if not os.path.isfile(path):
            raise FileNotFoundError(
                errno.ENOENT,
                f"viacodec: the shared library {path} does not exist; "
                f"build it with `make python` (or point {LIBRARY_ENV} at it)",
                path,
            )
        self.path = path
        dll = ctypes.CDLL(path)
        self._dll = dll

        def declare(name: str, restype: Any, argtypes: list, status: bool = False) -> Any:
            f = getattr(dll, name)
            f.restype = restype
            f.argtypes = argtypes
            if status:
                f.errcheck = self._check
            setattr(self, name, f)
            return f

        # const char* vc_version(void);  -- static string, never freed
        declare("vc_version", c_char_p, [])
        # int32_t vc_abi_version(void);
        declare("vc_abi_version", c_int32, [])
        # const char* vc_kind_name(int32_t kind);  -- static string or NULL
        declare("vc_kind_name", c_char_p, [c_int32])
        # const char* vc_dtype_name(int32_t dtype);  -- static string or NULL
        declare("vc_dtype_name", c_char_p, [c_int32])
        # int32_t vc_dtype_size(int32_t dtype);  -- 0 for a code that is not a dtype
        declare("vc_dtype_size", c_int32, [c_int32])
        # int32_t vc_get_limits(vc_limits* out, vc_error* err);
        declare("vc_get_limits", c_int32, [POINTER(VcLimits), POINTER(VcError)], status=True)
        # int32_t vc_diagnose(const uint8_t* msg, uint64_t msg_len, int64_t width, int32_t full,
        #                     char** out, vc_error* err);  -- *out: vc_free
        declare("vc_diagnose", c_int32, [c_void_p, c_uint64, c_int64, c_int32, POINTER(c_void_p), POINTER(VcError)], status=True)
        # void vc_free(void* p);
        declare("vc_free", None, [c_void_p])
        # int32_t vc_release(int64_t h, vc_error* err);
        declare("vc_release", c_int32, [c_int64, POINTER(VcError)], status=True)
        # int64_t vc_handle_count(void);
        declare("vc_handle_count", c_int64, [])
        # int32_t vc_encode(const uint8_t* skel, uint64_t skel_len, const vc_slot* slots,
        #                   int64_t nslots, const vc_enc_options* opts, int64_t* handle,
        #                   uint64_t* size, vc_error* err);
        declare(
            "vc_encode",
            c_int32,
            [c_void_p, c_uint64, POINTER(VcSlot), c_int64, POINTER(VcEncOptions), POINTER(c_int64), POINTER(c_uint64), POINTER(VcError)],
            status=True,
        )
        # int32_t vc_message_copy(int64_t h, void* dst, uint64_t dst_cap, vc_error* err);
        declare("vc_message_copy", c_int32, [c_int64, c_void_p, c_uint64, POINTER(VcError)], status=True)
        # int32_t vc_marshal(const uint8_t* skel, uint64_t skel_len, const vc_slot* slots,
        #                    int64_t nslots, const vc_enc_options* opts, uint8_t** out,
        #                    uint64_t* out_len, vc_error* err);
        declare(
            "vc_marshal",
            c_int32,
            [c_void_p, c_uint64, POINTER(VcSlot), c_int64, POINTER(VcEncOptions), POINTER(c_void_p), POINTER(c_uint64), POINTER(VcError)],
            status=True,
        )
        # int32_t vc_decode(const uint8_t* msg, uint64_t msg_len, const vc_dec_options* opts,
        #                   int64_t* handle, uint8_t** skel, uint64_t* skel_len,
        #                   vc_slot** slots, int64_t* nslots, vc_error* err);
        declare(
            "vc_decode",
            c_int32,
            [
                c_void_p,
                c_uint64,
                POINTER(VcDecOptions),
                POINTER(c_int64),
                POINTER(c_void_p),
                POINTER(c_uint64),
                POINTER(POINTER(VcSlot)),
                POINTER(c_int64),
                POINTER(VcError),
            ],
            status=True,
        )
        # int32_t vc_decode_fill(int64_t h, const vc_slot* dst, int64_t n, vc_error* err);
        declare("vc_decode_fill", c_int32, [c_int64, POINTER(VcSlot), c_int64, POINTER(VcError)], status=True)
        # int32_t vc_decode_cancel(int64_t h, vc_error* err);
        declare("vc_decode_cancel", c_int32, [c_int64, POINTER(VcError)], status=True)

        # ---- by reference ----
        # int32_t vc_host_new(const vc_host_options* opts, int64_t* handle, vc_error* err);
        declare("vc_host_new", c_int32, [POINTER(VcHostOptions), POINTER(c_int64), POINTER(VcError)], status=True)
        # int32_t vc_host_check(const vc_host_options* opts, vc_error* err);
        declare("vc_host_check", c_int32, [POINTER(VcHostOptions), POINTER(VcError)], status=True)
        # int32_t vc_host_grant_upload(int64_t h, int64_t max_bytes, int64_t timeout_ns, char** grant, vc_error* err);  -- *grant: vc_free
        declare("vc_host_grant_upload", c_int32, [c_int64, c_int64, c_int64, POINTER(c_void_p), POINTER(VcError)], status=True)
        # int32_t vc_cancel_new(int64_t* handle, vc_error* err);
        declare("vc_cancel_new", c_int32, [POINTER(c_int64), POINTER(VcError)], status=True)
        # int32_t vc_cancel(int64_t h, vc_error* err);
        declare("vc_cancel", c_int32, [c_int64, POINTER(VcError)], status=True)
        # int32_t vc_host_source(int64_t h, char** out, vc_error* err);  -- *out: vc_free
        declare("vc_host_source", c_int32, [c_int64, POINTER(c_void_p), POINTER(VcError)], status=True)
        # int32_t vc_host_name(int64_t h, char** out, vc_error* err);  -- *out: vc_free
        declare("vc_host_name", c_int32, [c_int64, POINTER(c_void_p), POINTER(VcError)], status=True)
        # int32_t vc_host_stats(int64_t h, vc_host_counters* out, vc_error* err);
        declare("vc_host_stats", c_int32, [c_int64, POINTER(VcHostCounters), POINTER(VcError)], status=True)
        # int32_t vc_host_encode(int64_t h, const uint8_t* skel, uint64_t skel_len, const vc_slot* slots,
        #                        int64_t nslots, const vc_publish_options* opts, int64_t* handle,
        #                        uint64_t* size, int64_t* tx, vc_error* err);
        declare(
            "vc_host_encode",
            c_int32,
            [
                c_int64,
                c_void_p,
                c_uint64,
                POINTER(VcSlot),
                c_int64,
                POINTER(VcPublishOptions),
                POINTER(c_int64),
                POINTER(c_uint64),
                POINTER(c_int64),
                POINTER(VcError),
            ],
            status=True,
        )
        # int32_t vc_relay_new(const vc_relay_options* opts, int64_t* handle, vc_error* err);
        declare("vc_relay_new", c_int32, [POINTER(VcRelayOptions), POINTER(c_int64), POINTER(VcError)], status=True)
        # int32_t vc_relay_forward(int64_t relay, const uint8_t* msg, uint64_t msg_len, uint8_t** out,
        #                          uint64_t* out_len, vc_error* err);  -- *out: vc_free
        declare("vc_relay_forward", c_int32, [c_int64, c_char_p, c_uint64, POINTER(c_void_p), POINTER(c_uint64), POINTER(VcError)], status=True)
        # int32_t vc_relay_source(int64_t relay, char** out, vc_error* err);  -- *out: vc_free
        declare("vc_relay_source", c_int32, [c_int64, POINTER(c_void_p), POINTER(VcError)], status=True)
        # int32_t vc_relay_stats(int64_t relay, vc_relay_counters* out, vc_error* err);
        declare("vc_relay_stats", c_int32, [c_int64, POINTER(VcRelayCounters), POINTER(VcError)], status=True)
        # int32_t vc_host_decode(int64_t h, const uint8_t* msg, uint64_t msg_len,
        #                        const vc_dec_options* opts, int64_t* handle, uint8_t** skel,
        #                        uint64_t* skel_len, vc_slot** slots, int64_t* nslots, vc_error* err);
        declare(
            "vc_host_decode",
            c_int32,
            [
                c_int64,
                c_void_p,
                c_uint64,
                POINTER(VcDecOptions),
                POINTER(c_int64),
                POINTER(c_void_p),
                POINTER(c_uint64),
                POINTER(POINTER(VcSlot)),
                POINTER(c_int64),
                POINTER(VcError),
            ],
            status=True,
        )
        # int32_t vc_decode_fetch(int64_t h, const vc_slot* dst, int64_t n, int64_t timeout_ns, vc_error* err);
        declare("vc_decode_fetch", c_int32, [c_int64, POINTER(VcSlot), c_int64, c_int64, POINTER(VcError)], status=True)
        # int32_t vc_decode_offload(int64_t h, const char* dir, int64_t timeout_ns, char** path,
        #                           int64_t* offsets, int64_t n, vc_error* err);  -- vc_free(*path)
        declare(
            "vc_decode_offload",
            c_int32,
            [c_int64, c_char_p, c_int64, POINTER(c_void_p), POINTER(c_int64), c_int64, POINTER(VcError)],
            status=True,
        )
        # int32_t vc_tx_wait(int64_t tx, int64_t timeout_ns, vc_outcome** outcome, vc_error* err);  -- vc_free
        declare("vc_tx_wait", c_int32, [c_int64, c_int64, POINTER(POINTER(VcOutcome)), POINTER(VcError)], status=True)
        # int32_t vc_tx_status(int64_t tx, vc_outcome** outcome, vc_error* err);  -- vc_free
        declare("vc_tx_status", c_int32, [c_int64, POINTER(POINTER(VcOutcome)), POINTER(VcError)], status=True)
        # int32_t vc_tx_abort(int64_t tx, vc_error* err);
        declare("vc_tx_abort", c_int32, [c_int64, POINTER(VcError)], status=True)
        # const char* vc_tx_state_name(int32_t s);  -- static string or NULL
        declare("vc_tx_state_name", c_char_p, [c_int32])
        # const char* vc_receiver_state_name(int32_t s);  -- static string or NULL
        declare("vc_receiver_state_name", c_char_p, [c_int32])

        abi = self.vc_abi_version()
        if abi != ABI_VERSION:
            raise ImportError(f"viacodec: {path} has C ABI version {abi}, this package needs {ABI_VERSION}; rebuild it with `make python`")

    def _check(self, status: int, func: Any, args: tuple) -> int:
        """errcheck of every status function: raises the exception of the
        status's kind, with the library's message, which it frees."""
        err = args[-1]._obj if args and hasattr(args[-1], "_obj") else None
        msg, offset = "", None
        if err is not None and err.msg:
            try:
                msg = ctypes.string_at(err.msg).decode("utf-8", "replace")
            finally:
                self.vc_free(err.msg)
                err.msg = None
            offset = err.offset if err.offset >= 0 else None
        if status != 0:
            raise error_for(status, python_text(msg) or f"viacodec: {func.__name__} failed with status {status}", offset)
        return status

    # ---- wrappers of the functions with out-parameters ----

    def version(self) -> str:
        return self.vc_version().decode()

    def limits(self) -> VcLimits:
        """vc_get_limits: the core's fixed limits (read once)."""
        got = self.__dict__.get("_limits")
        if got is None:
            got = VcLimits()
            self.vc_get_limits(byref(got), byref(VcError()))
            self._limits = got
        return got

    def diagnose(self, msg: bytes, width: int, full: bool) -> str:
        """vc_diagnose: the message in CBOR diagnostic notation."""
        out = c_void_p()
        self.vc_diagnose(msg, len(msg), width, 1 if full else 0, byref(out), byref(VcError()))
        try:
            return ctypes.string_at(out.value).decode("utf-8")
        finally:
            self.vc_free(out)

    def release(self, handle: int) -> None:
        self.vc_release(handle, byref(VcError()))

    def encode(self, skel: int, skel_len: int, slots: Any, nslots: int, opts: VcEncOptions) -> Tuple[int, int]:
        """vc_encode: returns (message handle, message size)."""
        handle, size = c_int64(), c_uint64()
        self.vc_encode(skel, skel_len, slots, nslots, byref(opts), byref(handle), byref(size), byref(VcError()))
        return handle.value, size.value

    def message_copy(self, handle: int, dst: int, cap: int) -> None:
        self.vc_message_copy(handle, dst, cap, byref(VcError()))

    def marshal(self, skel: int, skel_len: int, slots: Any, nslots: int, opts: VcEncOptions) -> bytes:
        """vc_marshal: returns the message as bytes (copied out of the
        library's buffer, which is then freed)."""
        out, n = c_void_p(), c_uint64()
        self.vc_marshal(skel, skel_len, slots, nslots, byref(opts), byref(out), byref(n), byref(VcError()))
        try:
            return ctypes.string_at(out.value, n.value)
        finally:
            self.vc_free(out)

    def decode(self, msg: int, msg_len: int, opts: VcDecOptions) -> Tuple[int, int, int, Any, int]:
        """vc_decode: returns (handle, skeleton address, skeleton length,
        slot descriptors, slot count); the handle owns the skeleton and
        the descriptors."""
        handle, skel, skel_len = c_int64(), c_void_p(), c_uint64()
        slots, nslots = POINTER(VcSlot)(), c_int64()
        self.vc_decode(msg, msg_len, byref(opts), byref(handle), byref(skel), byref(skel_len), byref(slots), byref(nslots), byref(VcError()))
        return handle.value, skel.value or 0, skel_len.value, slots, nslots.value

    def decode_fill(self, handle: int, dst: Any, n: int) -> None:
        self.vc_decode_fill(handle, dst, n, byref(VcError()))

    def decode_cancel(self, handle: int) -> None:
        self.vc_decode_cancel(handle, byref(VcError()))

    def cancel_new(self) -> int:
        handle = c_int64()
        self.vc_cancel_new(byref(handle), byref(VcError()))
        return handle.value

    def cancel(self, handle: int) -> None:
        self.vc_cancel(handle, byref(VcError()))

    def host_new(self, opts: VcHostOptions) -> int:
        handle = c_int64()
        self.vc_host_new(byref(opts), byref(handle), byref(VcError()))
        return handle.value

    def host_string(self, func: Any, handle: int) -> str:
        """vc_host_source or vc_host_name: the string, freed after copying."""
        out = c_void_p()
        func(handle, byref(out), byref(VcError()))
        try:
            return ctypes.string_at(out.value).decode("utf-8")
        finally:
            self.vc_free(out)

    def host_stats(self, handle: int) -> VcHostCounters:
        out = VcHostCounters()
        self.vc_host_stats(handle, byref(out), byref(VcError()))
        return out

    def host_encode(self, host: int, skel: int, skel_len: int, slots: Any, nslots: int, opts: VcPublishOptions) -> Tuple[int, int, int]:
        """vc_host_encode: returns (message handle, message size, transaction handle or 0)."""
        handle, size, tx = c_int64(), c_uint64(), c_int64()
        self.vc_host_encode(host, skel, skel_len, slots, nslots, byref(opts), byref(handle), byref(size), byref(tx), byref(VcError()))
        return handle.value, size.value, tx.value

    def host_decode(self, host: int, msg: int, msg_len: int, opts: VcDecOptions) -> Tuple[int, int, int, Any, int]:
        """vc_host_decode: as decode."""
        handle, skel, skel_len = c_int64(), c_void_p(), c_uint64()
        slots, nslots = POINTER(VcSlot)(), c_int64()
        self.vc_host_decode(host, msg, msg_len, byref(opts), byref(handle), byref(skel), byref(skel_len), byref(slots), byref(nslots), byref(VcError()))
        return handle.value, skel.value or 0, skel_len.value, slots, nslots.value

    def decode_fetch(self, handle: int, dst: Any, n: int, timeout_ns: int) -> None:
        self.vc_decode_fetch(handle, dst, n, timeout_ns, byref(VcError()))

    def decode_offload(self, handle: int, directory: str, n: int, timeout_ns: int) -> Tuple[str, List[int]]:
        """vc_decode_offload: returns the file's path and each slot's
        offset in it (-1: not in the file), the path freed after copying."""
        path, offsets = c_void_p(), (c_int64 * max(n, 1))()
        self.vc_decode_offload(handle, os.fsencode(directory), timeout_ns, byref(path), offsets, n, byref(VcError()))
        try:
            return os.fsdecode(ctypes.string_at(path.value)), offsets[:n]
        finally:
            self.vc_free(path)

    def tx_outcome(self, func: Any, *args: Any) -> Tuple[int, bool, str, list]:
        """vc_tx_wait or vc_tx_status: returns (state, ended, ref id,
        [(id, state, bytes, first_seen_ns, last_seen_ns)]), the block freed."""
        out = POINTER(VcOutcome)()
        func(*args, byref(out), byref(VcError()))
        try:
            o = out.contents
            rs = [(r.id.decode("utf-8", "replace"), r.state, r.bytes, r.first_seen_ns, r.last_seen_ns) for r in o.receivers[: o.nreceivers]]
            return o.state, bool(o.ended), o.ref_id.decode(), rs
        finally:
            self.vc_free(out)


_lib: Optional[Library] = None
_lib_lock = threading.Lock()
_forked = False


def _after_fork_in_child() -> None:
    # A forked child has one thread: the Go runtime's threads did not come
    # along, and a call into it could hang or crash. Refuse every call.
    global _forked
    if _lib is not None:
        _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def forked() -> bool:
    """Whether this process is a fork of one that had loaded the library
    (which it then must not call)."""
    return _forked


def lib() -> Library:
    """Returns the library, loading it on first use. In a process forked
    from one that had loaded it, raises ForkedProcessError."""
    global _lib
    if _forked:
        raise ForkedProcessError(
            "viacodec: this process was forked from one that had loaded libviacodec.so, whose Go runtime "
            "does not survive a fork; start it with the \"spawn\" method "
            '(multiprocessing.get_context("spawn")) instead'
        )
    if _lib is None:
        with _lib_lock:
            if _lib is None:
                _lib = Library(library_path())
    return _lib


# ---- CPython's own API, for bytes objects filled in place ----
#
# dumps returns bytes without copying the message twice: it creates an
# uninitialised bytes object and has the library write into it before any
# other code sees the object (what C extensions do with
# PyBytes_FromStringAndSize(NULL, n)). Without ctypes.pythonapi (not
# CPython), it falls back to a bytearray and one more copy.

try:
    # PyObject* PyBytes_FromStringAndSize(const char* v, Py_ssize_t len);
    _bytes_new = ctypes.pythonapi.PyBytes_FromStringAndSize
    _bytes_new.restype = ctypes.py_object
    _bytes_new.argtypes = [c_void_p, ctypes.c_ssize_t]
    # char* PyBytes_AsString(PyObject* o);
    _bytes_ptr = ctypes.pythonapi.PyBytes_AsString
    _bytes_ptr.restype = c_void_p
    _bytes_ptr.argtypes = [ctypes.py_object]
except (AttributeError, ValueError):  # pragma: no cover - not CPython
    _bytes_new = None


def new_buffer(n: int) -> Tuple[Any, int]:
    """Returns (obj, address) of n writable bytes for the library to fill
    before obj is shared: a fresh bytes object on CPython, a bytearray
    elsewhere (finish with bytes(obj)). n must be positive."""
    if _bytes_new is not None:
        b = _bytes_new(None, n)
        return b, _bytes_ptr(b)
    ba = bytearray(n)
    return ba, ctypes.addressof((ctypes.c_char * n).from_buffer(ba))
