"""Strict reader for the IDX format of LeCun et al. (http://yann.lecun.com/exdb/mnist/), plain or gzipped."""
from __future__ import annotations

import os
import zlib
from typing import Optional

import numpy as np

from ..errors import DgmError

_GZIP_MAGIC = b"\x1f\x8b"
# IDX type code -> big-endian numpy dtype
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FIX = "re-download or reinstall it"


#: the most a gzipped data file may expand (real image data compresses 2-10x; a "gzip bomb" 1000x)
MAX_RATIO = 64


def _gunzip(path: str, data: bytes, limit: int) -> bytes:
    """``data`` gunzipped, refused in one line once the output would pass ``limit`` bytes (never allocated)."""
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise DgmError(f"{path}: corrupt gzip data ({e}); {_FIX}") from None
    if len(out) > limit:
        raise DgmError(f"{path}: expands to more than {limit} bytes when gunzipped ({len(data)} bytes gzipped); "
                       f"not the data file expected (a damaged or hostile file); {_FIX}")
    if not d.eof:
        raise DgmError(f"{path}: corrupt gzip data (the stream ends early); {_FIX}")
    return out


def read_bytes(path: str, limit: Optional[int] = None) -> bytes:
    """Whole file contents, gunzipped when it starts with the gzip magic bytes. A gzipped file may expand to ``limit``
    bytes (default ``MAX_RATIO`` times its size); more is refused before it is allocated."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DgmError(f"{path}: cannot read ({e.strerror or e})") from None
    if data[:2] == _GZIP_MAGIC:
        data = _gunzip(path, data, limit if limit is not None else MAX_RATIO * len(data) + (1 << 20))
    return data


def _idx_limit(path: str) -> Optional[int]:
    """The exact size a gzipped IDX file must expand to, from the dimensions in its header (None: not gzipped, or a
    header too short to say: read_idx names the problem)."""
    with open(path, "rb") as f:
        if f.read(2) != _GZIP_MAGIC:
            return None
        f.seek(0)
        head = zlib.decompressobj(wbits=31)
        try:
            first = head.decompress(f.read(1 << 16), 4 + 4 * 4)
        except zlib.error:
            return None
    if len(first) < 4 or first[2] not in _IDX_TYPES or not 1 <= first[3] <= 4 or len(first) < 4 + 4 * first[3]:
        return None
    dims = np.frombuffer(first, dtype=">u4", count=first[3], offset=4).astype(np.int64)
    return 4 + 4 * int(first[3]) + int(np.prod(dims)) * np.dtype(_IDX_TYPES[first[2]]).itemsize


def read_idx(path) -> np.ndarray:
    """Parse an IDX file into a native-endian array, checking header and payload length exactly."""
    path = os.fspath(path)
    try:
        limit = _idx_limit(path)
    except OSError as e:
        raise DgmError(f"{path}: cannot read ({e.strerror or e})") from None
    if limit is not None:  # no more than its header says, nor more than gzip of real data expands
        limit = min(limit, MAX_RATIO * os.path.getsize(path) + (1 << 20))
    data = read_bytes(path, limit)
    if len(data) < 4:
        raise DgmError(f"{path}: not an IDX file (only {len(data)} bytes, shorter than the header); {_FIX}")
    if data[0] != 0 or data[1] != 0:
        raise DgmError(f"{path}: not an IDX file (bad magic 0x{data[0]:02x}{data[1]:02x}, expected 0x0000); {_FIX}")
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        raise DgmError(f"{path}: unknown IDX type code 0x{code:02x} (known: "
                       f"{', '.join(f'0x{c:02X}' for c in _IDX_TYPES)}); {_FIX}")
    if not 1 <= ndim <= 4:
        raise DgmError(f"{path}: bad IDX dimension count {ndim} (expected 1..4); {_FIX}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DgmError(f"{path}: truncated IDX header (expected {header} bytes, found {len(data)}); {_FIX}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected:
        raise DgmError(f"{path}: truncated IDX file (expected {expected} bytes, found {len(data)}); {_FIX}")
    if len(data) > expected:
        raise DgmError(f"{path}: IDX file has {len(data) - expected} trailing bytes "
                       f"(expected {expected} bytes, found {len(data)}); {_FIX}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))
