"""The staging store: an S3 prefix in production, a local folder in the embedded default.

Writes are atomic: a local file is renamed into place when complete, and an S3 object only exists
once its upload has completed, so a half-written object can never be mistaken for a complete one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import dagster as dg

from warehouse_assets.lib.s3 import S3Configuration, s3_client

KEY = re.compile(r"^[A-Za-z0-9_=\-][A-Za-z0-9_.=\-]*(/[A-Za-z0-9_=\-][A-Za-z0-9_.=\- ]*)*$")
# Parts of 8 MiB, one uploading while the next fills: measured as fast as 16 or 32 MiB parts and
# as two in flight (gzip output is ~20 MB/s, well under one part stream), and 8 MB less memory
# than two; S3's minimum part is 5 MiB and 10,000 parts of 8 MiB allow 78 GiB.
PART_BYTES = 8 * 1024 * 1024
PARTS_IN_FLIGHT = 1


class StagingError(RuntimeError):
    """A staged object is missing or a key would leave the staging prefix."""


class _MultipartUpload:
    """A write-only file that uploads S3 parts while it is written; nothing is visible until
    complete(), and abort() discards the parts (a small object is one PUT at complete())."""

    def __init__(self, s3, bucket: str, key: str, part_bytes: int):
        self.s3, self.bucket, self.key, self.part_bytes = s3, bucket, key, part_bytes
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.written = 0
        self.upload_id: str | None = None
        self.parts: list[Future] = []
        self.pool: ThreadPoolExecutor | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self.buffer.append(bytes(data))
        self.buffered += len(data)
        self.written += len(data)
        if self.buffered >= self.part_bytes:
            self._send()
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        pass

    def _send(self) -> None:
        """Hand the buffered bytes to an uploader thread; wait while too many are in flight."""
        if self.upload_id is None:
            self.upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.key)[
                "UploadId"]
            self.pool = ThreadPoolExecutor(PARTS_IN_FLIGHT, thread_name_prefix="s3-part")
        body, self.buffer, self.buffered = b"".join(self.buffer), [], 0
        self.parts.append(self.pool.submit(
            self.s3.upload_part, Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
            PartNumber=len(self.parts) + 1, Body=body,
        ))
        for part in self.parts[:-PARTS_IN_FLIGHT]:
            part.result()  # raises at once if an earlier part failed

    def complete(self) -> None:
        if self.upload_id is None:
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=b"".join(self.buffer))
            return
        if self.buffer:
            self._send()
        etags = [{"PartNumber": i, "ETag": p.result()["ETag"]} for i, p in enumerate(self.parts, 1)]
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key,
                                          UploadId=self.upload_id,
                                          MultipartUpload={"Parts": etags})
        self.pool.shutdown()

    def abort(self) -> None:
        self.buffer = []
        if self.upload_id is not None:
            self.pool.shutdown(cancel_futures=True)
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key,
                                           UploadId=self.upload_id)


def check_key(key: str) -> str:
    """Keys stay inside the staging prefix: no absolute paths, no '..', no odd characters."""
    if not KEY.fullmatch(key) or any(part in ("", ".", "..") for part in key.split("/")):
        raise StagingError(f"staging key {key!r} is not a safe relative key")
    return key


@dataclass(frozen=True)
class StoredObject:
    """One object in the store; version changes whenever the object is rewritten."""

    key: str
    size: int
    version: str


class StagingStore(S3Configuration):
    """Where staged and landed files live: `s3://bucket/prefix` or a local folder.

    S3 access takes dagster-aws's S3Resource fields (region_name, endpoint_url, profile_name,
    max_attempts, use_ssl, verify, aws_access_key_id, ...), configured as S3Resource is; those
    left unset fall back to boto3's chain: AWS_* variables, shared config and credentials files,
    instance or task role. The atomic writes and key checks are this class's own.
    """

    url: str

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")

    @property
    def _bucket_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.url[len("s3://") :].partition("/")
        return bucket, prefix.strip("/")

    @property
    def _s3(self):
        values = {name: getattr(self, name) for name in S3Configuration.model_fields}
        # Resolved inside a run; an EnvVar is still unresolved where a sensor reads the resource.
        config = json.dumps({k: v.get_value() if isinstance(v, dg.EnvVar) else v
                             for k, v in values.items() if v is not None}, sort_keys=True)
        return s3_client(config, os.environ.get("AWS_ENDPOINT_URL") or None)

    def _s3_key(self, key: str) -> str:
        prefix = self._bucket_prefix[1]
        return f"{prefix}/{check_key(key)}" if prefix else check_key(key)

    def _path(self, key: str) -> Path:
        return Path(self.url) / check_key(key)

    def uri(self, key: str) -> str:
        if self.is_s3:
            return f"s3://{self._bucket_prefix[0]}/{self._s3_key(key)}"
        return str(self._path(key).resolve())

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[IO[bytes]]:
        """A writable file that becomes the object only if the block completes."""
        if self.is_s3:
            bucket = self._bucket_prefix[0]
            upload = _MultipartUpload(self._s3, bucket, self._s3_key(key), PART_BYTES)
            try:
                yield upload
                upload.complete()
            except BaseException:  # an interrupted extract must never become a visible object
                upload.abort()
                raise
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, path)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_write(key) as fh:
            fh.write(data)

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as fh:
            return fh.read()

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        """A streaming reader of the object (never the whole object in memory)."""
        if self.is_s3:
            try:
                body = self._s3.get_object(Bucket=self._bucket_prefix[0], Key=self._s3_key(key))
            except self._s3.exceptions.NoSuchKey:
                raise StagingError(f"{self.uri(key)} does not exist") from None
            with contextlib.closing(body["Body"]) as stream:
                yield stream
            return
        if not self._path(key).is_file():
            raise StagingError(f"{self.uri(key)} does not exist")
        with open(self._path(key), "rb") as fh:
            yield fh

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """A local file with the object's bytes (downloaded to a temporary file from S3)."""
        if not self.is_s3:
            path = self._path(key)
            if not path.exists():
                raise StagingError(f"{self.uri(key)} does not exist")
            yield path
            return
        suffix = "".join(Path(key).suffixes)
        with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
            with self.open_read(key) as src:
                shutil.copyfileobj(src, tmp, 4 * 1024 * 1024)
            tmp.flush()
            yield Path(tmp.name)

    def exists(self, key: str) -> bool:
        if self.is_s3:
            try:
                self._s3.head_object(Bucket=self._bucket_prefix[0], Key=self._s3_key(key))
                return True
            except self._s3.exceptions.ClientError:
                return False
        return self._path(key).exists()

    def list(self, prefix: str, startswith: bool = False) -> list[StoredObject]:
        """Every complete object under the folder prefix (with startswith: every object of
        prefix's folder whose key starts with prefix), with a version that changes on rewrite."""
        prefix = check_key(prefix if startswith else prefix.rstrip("/"))
        if self.is_s3:
            bucket, root = self._bucket_prefix
            strip = len(root) + 1 if root else 0
            found = []
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=self._s3_key(prefix) + ("" if startswith else "/")
            ):
                for obj in page.get("Contents", []):
                    found.append(
                        StoredObject(obj["Key"][strip:], obj["Size"], obj["ETag"].strip('"'))
                    )
            return found
        base = Path(self.url)
        found = []
        paths = ((base / prefix).parent.glob(Path(prefix).name + "*") if startswith
                 else (base / prefix).rglob("*"))
        for path in sorted(paths):
            if path.is_file() and not path.name.startswith("."):
                st = path.stat()
                found.append(
                    StoredObject(
                        path.relative_to(base).as_posix(), st.st_size, f"{st.st_mtime_ns}-{st.st_size}"
                    )
                )
        return found

    def delete(self, key: str) -> None:
        if self.is_s3:
            self._s3.delete_object(Bucket=self._bucket_prefix[0], Key=self._s3_key(key))
        else:
            self._path(key).unlink(missing_ok=True)
