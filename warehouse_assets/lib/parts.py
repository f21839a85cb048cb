"""A window staged as parts: deterministic part names, the part-rolling gzip sink both readers
write through, and the check a load makes that the store holds exactly the manifest's parts.

A part is a complete gzip file of whole rows, at most `part_bytes` compressed. Parts are cut only
between batches (a batch holds whole rows, and a CSV value may contain a newline, so no other cut
is safe). Each batch is deflated and then fully flushed, which makes its compressed bytes
independent of what came before: a batch that would overflow its part starts the next one without
being compressed twice, and every part ends within its limit (only a single batch bigger than the
limit makes a part bigger, holding that one batch).
"""

from __future__ import annotations

import contextlib
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Self

from warehouse_assets.lib.staged import StagedFile
from warehouse_assets.lib.staging import StagingError, StagingStore

SUFFIX = ".csv.gz"
# gzip header: magic, deflate, no flags, mtime 0 (the same rows give the same bytes), OS unknown.
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_FINAL_BLOCK = b"\x03\x00"  # an empty final deflate block (what zlib's Z_FINISH adds here)
_TRAILER_BYTES = len(_FINAL_BLOCK) + 8  # final block, CRC-32, size


def part_key(key: str, number: int) -> str:
    """Part 1 is the window's key itself (a one-part window is staged as before); part n>1 is
    <window>.part<nnnn>.csv.gz beside it."""
    return key if number == 1 else f"{key.removesuffix(SUFFIX)}.part{number:04d}{SUFFIX}"


def _part_pattern(key: str) -> re.Pattern:
    stem = re.escape(key.removesuffix(SUFFIX).rsplit("/", 1)[-1])
    return re.compile(rf"(^|/){stem}(\.part\d{{4,}})?{re.escape(SUFFIX)}$")


def stored_parts(store: StagingStore, key: str) -> dict[str, str]:
    """Every part of key's window now in the store: key -> version."""
    pattern = _part_pattern(key)
    return {o.key: o.version for o in store.list(key.removesuffix(SUFFIX) + ".", startswith=True)
            if pattern.search(o.key)}


@dataclass
class PartWriter:
    """The sink both readers write through: gzip parts of at most part_bytes, cut between batches.

    Each part is written atomically (staging.py); nothing replaces the window's manifest, which the
    staging IO manager writes last, after removing the parts a bigger earlier run left.
    """

    store: StagingStore
    key: str
    part_bytes: int
    compresslevel: int = 1
    keys: list[str] = field(default_factory=list)
    bytes: int = 0  # compressed bytes written, all parts
    _stack: contextlib.ExitStack | None = None
    _fh: object = None
    _size = 0
    _crc = 0
    _raw = 0

    def __post_init__(self) -> None:
        self._deflate = zlib.compressobj(self.compresslevel, zlib.DEFLATED, -zlib.MAX_WBITS)

    def write_batch(self, data: bytes) -> None:
        """One batch of whole CSV rows."""
        if not data:
            return
        block = self._deflate.compress(data) + self._deflate.flush(zlib.Z_FULL_FLUSH)
        if self._fh is not None and self._size + len(block) + _TRAILER_BYTES > self.part_bytes \
                and self._raw:
            self._finish_part()
        if self._fh is None:
            self._open_part()
        self._write(block)
        self._crc = zlib.crc32(data, self._crc)
        self._raw += len(data)

    def _open_part(self) -> None:
        self._stack = contextlib.ExitStack()
        self._fh = self._stack.enter_context(
            self.store.open_write(part_key(self.key, len(self.keys) + 1)))
        self._size = self._crc = self._raw = 0
        self._write(_HEADER)

    def _write(self, data: bytes) -> None:
        self._fh.write(data)
        self._size += len(data)
        self.bytes += len(data)

    def _finish_part(self) -> None:
        self._write(_FINAL_BLOCK + struct.pack("<II", self._crc, self._raw & 0xFFFFFFFF))
        self.keys.append(part_key(self.key, len(self.keys) + 1))
        stack, self._stack, self._fh = self._stack, None, None
        stack.close()  # completes the upload, or renames the local file into place

    def close(self) -> list[str]:
        """Complete the last part (an empty window is one empty part); the parts' keys."""
        if self._fh is None and not self.keys:
            self._open_part()
        if self._fh is not None:
            self._finish_part()
        return self.keys

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """On an error, discard the part being written and the parts this extract completed, so
        a failed extract leaves nothing behind (a killed process leaves complete parts that no
        manifest lists as they are: never loaded, and removed or replaced by the next run)."""
        if exc_type is None:
            return
        if self._stack is not None:
            stack, self._stack, self._fh = self._stack, None, None
            stack.__exit__(exc_type, exc, tb)
        for key in self.keys:
            with contextlib.suppress(Exception):  # the extract's own error is the one to report
                self.store.delete(key)


def check_parts(staged: StagedFile, store: StagingStore, target: str) -> None:
    """The store holds exactly the parts the manifest lists, as they were when it was written;
    otherwise the load fails before anything changes, naming the part."""
    found = stored_parts(store, staged.key)
    expected = staged.parts
    again = "nothing was loaded. Materialize the staging asset for this window again."
    missing = [k for k in expected if k not in found]
    if missing:
        raise StagingError(f"loading {target}: staged part {store.uri(missing[0])} listed in its "
                           f"manifest is missing ({len(missing)} missing); {again}")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise StagingError(f"loading {target}: staged part {store.uri(extra[0])} is not in its "
                           f"window's manifest ({len(extra)} extra); {again}")
    for k, version in zip(expected, staged.manifest.versions):
        if found[k] != version:
            raise StagingError(f"loading {target}: staged part {store.uri(k)} changed after its "
                               f"manifest was written (an extract that failed midway?); {again}")
