"""Checkpoint files: one torch-serialised payload behind a header that contains its sha256.

Layout: the line `scalelab-checkpoint-v1`, then the sha256 of the payload in hex and a newline,
then the payload bytes written by `torch.save`. A file is written to a temporary name and then
renamed, so a reader sees either the previous checkpoint or the new one, never a torn file.
The URL is a local path or any fsspec URL (such as `s3://bucket/run.ckpt` or `memory://run.ckpt`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import posixpath
import uuid
from typing import Any

import fsspec
import torch
from fsspec.implementations.local import LocalFileSystem

logger = logging.getLogger(__name__)

MAGIC = b"scalelab-checkpoint-v1\n"
_DIGEST_LEN = 64  # hex characters of a sha256


class CheckpointError(ValueError):
    """A checkpoint that exists but cannot be trusted: wrong format or checksum mismatch."""


def save_checkpoint(url: str, payload: dict[str, Any]) -> None:
    """Write `payload` to `url` atomically, with its sha256 in the header."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    data = MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body

    fs, path = fsspec.core.url_to_fs(url)
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    temp_path = f"{path}.tmp-{uuid.uuid4().hex}"
    if isinstance(fs, LocalFileSystem):
        with open(temp_path, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)  # atomic on POSIX within one file system
    else:
        # Object stores have no rename; a move of a complete object is the closest to atomic.
        fs.pipe_file(temp_path, data)
        fs.mv(temp_path, path)
    logger.debug("wrote checkpoint %s (%d bytes)", url, len(data))


def load_checkpoint(url: str) -> dict[str, Any] | None:
    """Read and verify the checkpoint at `url`; return None when there is no file there.

    Raises CheckpointError when the file is not a scalelab checkpoint or its checksum does not
    match, because resuming from a damaged file would silently change the run.
    """
    fs, path = fsspec.core.url_to_fs(url)
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as file:
        data = file.read()

    header_len = len(MAGIC) + _DIGEST_LEN + 1
    if not data.startswith(MAGIC) or len(data) < header_len:
        raise CheckpointError(
            f"checkpoint {url} is not a scalelab checkpoint (missing header): delete it to restart the run."
        )
    expected = data[len(MAGIC) : len(MAGIC) + _DIGEST_LEN].decode("ascii", errors="replace")
    body = data[header_len:]
    actual = hashlib.sha256(body).hexdigest()
    if actual != expected:
        raise CheckpointError(
            f"checkpoint {url} is damaged: sha256 {actual} does not match the stored {expected}. "
            "Delete it to restart the run from step 0."
        )
    return torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
