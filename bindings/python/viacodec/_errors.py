"""The exception hierarchy, one class per core.Kind.

The C ABI returns a core.Kind as its status code; each maps to one class
here. The numbers are stable (core/errors.go never renumbers them).
"""

from __future__ import annotations

import re
from typing import Optional


class ViacodecError(Exception):
    """Base class of every viacodec error.

    Attributes:
        kind: the core.Kind number (the C ABI status code).
        message: the error text.
        offset: byte offset in the input the error points at, or None.
    """

    kind: int = 0

    def __init__(self, message: str, offset: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class InvalidError(ViacodecError):
    """Bad argument, or a value viacodec cannot encode (kind 1)."""

    kind = 1


class DecodeSyntaxError(ViacodecError):
    """Input that is not well-formed or not valid CBOR (kind 2); has an offset."""

    kind = 2


class LimitError(ViacodecError):
    """A decode (or nesting) limit was exceeded (kind 3)."""

    kind = 3


class UnknownTagError(ViacodecError):
    """A CBOR tag the format does not define (kind 4)."""

    kind = 4


class MismatchError(ViacodecError):
    """dtype, shape or data length disagree (kind 5)."""

    kind = 5


class UnregisteredError(ViacodecError):
    """A typed object whose name is not registered, in strict mode (kind 6)."""

    kind = 6


class ProtocolError(ViacodecError):
    """Well-formed CBOR that breaks the viacodec format (kind 7)."""

    kind = 7


class UnknownRefError(ViacodecError):
    """A reference, batch or item nobody knows (kind 8)."""

    kind = 8


class ExpiredError(ViacodecError):
    """A reference whose transaction has finished (kind 9)."""

    kind = 9


class AuthError(ViacodecError):
    """A missing or wrong capability token (kind 10)."""

    kind = 10


class ViacodecTimeoutError(ViacodecError):
    """A deadline passed (kind 11). Named so as not to shadow TimeoutError."""

    kind = 11


class AbortedError(ViacodecError):
    """Cancelled by the caller or the source (kind 12)."""

    kind = 12


class ChecksumError(ViacodecError):
    """Downloaded bytes do not match their checksum (kind 13)."""

    kind = 13


class SourceUnavailableError(ViacodecError):
    """The source cannot be reached (kind 14)."""

    kind = 14


class ForkedProcessError(InvalidError):
    """The library was used in a process forked from one that had loaded
    it: its Go runtime does not survive a fork. Use the "spawn" start
    method of multiprocessing."""


_BY_KIND = {
    cls.kind: cls
    for cls in (
        InvalidError,
        DecodeSyntaxError,
        LimitError,
        UnknownTagError,
        MismatchError,
        UnregisteredError,
        ProtocolError,
        UnknownRefError,
        ExpiredError,
        AuthError,
        ViacodecTimeoutError,
        AbortedError,
        ChecksumError,
        SourceUnavailableError,
    )
}

# The names core gives the kinds (core.Kind.String), checked against the
# library's vc_kind_name by the tests.
KIND_NAMES = {
    0: "none",
    1: "invalid",
    2: "syntax",
    3: "limit",
    4: "unknown tag",
    5: "mismatch",
    6: "unregistered",
    7: "protocol",
    8: "unknown ref",
    9: "expired",
    10: "auth",
    11: "timeout",
    12: "aborted",
    13: "checksum",
    14: "unavailable",
}


def error_for(kind: int, message: str, offset: Optional[int] = None) -> ViacodecError:
    """Returns the exception of class kind (ViacodecError for a kind this
    package does not know, with its number kept in .kind)."""
    cls = _BY_KIND.get(kind)
    if cls is None:
        err = ViacodecError(message, offset)
        err.kind = kind
        return err
    return cls(message, offset)


# The core names its options as Go does; the package's callers know them
# as keyword arguments.
_OPTION_NAMES = {
    "MaxDepth": "max_depth",
    "MaxElements": "max_elements",
    "MaxByteLen": "max_byte_len",
    "MaxMessageSize": "max_message_size",
    "MaxArrayBytes": "max_array_bytes",
    "RefThreshold": "ref_threshold",
}
# Only where the core names an option, always before its value.
_OPTION_RE = re.compile(r"\b(?:DecOptions\.|EncOptions\.)?(" + "|".join(_OPTION_NAMES) + r")(?= -?\d)")


def python_text(msg: str) -> str:
    """The library's error text as a Python caller reads it: the core's
    option names become the keyword arguments they are here."""
    return _OPTION_RE.sub(lambda m: _OPTION_NAMES[m.group(1)], msg)
