"""Strict reader for the IDX format of LeCun et al. (http://yann.lecun.com/exdb/mnist/), plain or gzipped."""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from ..errors import DgmError

_GZIP_MAGIC = b"\x1f\x8b"
# IDX type code -> big-endian numpy dtype
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FIX = "re-download or reinstall it"


def read_bytes(path: str) -> bytes:
    """Whole file contents, gunzipped when it starts with the gzip magic bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DgmError(f"{path}: cannot read ({e.strerror or e})") from None
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DgmError(f"{path}: corrupt gzip data ({e}); {_FIX}") from None
    return data


def read_idx(path) -> np.ndarray:
    """Parse an IDX file into a native-endian array, checking header and payload length exactly."""
    path = os.fspath(path)
    data = read_bytes(path)
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
