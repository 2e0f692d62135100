"""The upload's multipart form: the file into a bounded temporary file, the other fields kept."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import BodyPartReader, web

from services.gateway import state
from services.gateway.errors import ApiError

log = logging.getLogger(__name__)
MAX_FIELD_BYTES = 8192  # any form field other than the file
READ_CHUNK = 1 << 16
MAX_ACTIVE = 8  # uploads one gateway feeds at once


@dataclass
class Upload:
    """A received form: the file (in a temporary file) and the other fields."""

    path: Path
    size: int = 0
    filename: str = ""
    fields: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        """The first value of a field, stripped; None when absent or empty."""
        values = self.fields.get(name) or [""]
        return values[0].strip() or None

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def check_capacity(app: web.Application) -> None:
    """429 while this gateway feeds MAX_ACTIVE uploads (a soft bound: checked before and after the body)."""
    if len(app[state.UPLOADS_ACTIVE]) >= MAX_ACTIVE:
        raise ApiError(429, f"{MAX_ACTIVE} uploads are being transcribed; try again later", None, "busy")


def too_large(limit: int) -> ApiError:
    size = f"{limit // 2**20} MB" if limit >= 2**20 else f"{limit} bytes"
    return ApiError(413, f"the upload is larger than {size}", "file", "file_too_large")


async def save_file(part: BodyPartReader, upload: Upload, limit: int) -> None:
    upload.filename = part.filename or "upload"
    with upload.path.open("wb") as out:
        while chunk := await part.read_chunk(READ_CHUNK):
            upload.size += len(chunk)
            if upload.size > limit:
                raise too_large(limit)
            out.write(chunk)


async def read_field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(READ_CHUNK):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise ApiError(400, f"form field {part.name!r} is too long", part.name)
    return data.decode(part.get_charset("utf-8"), errors="replace")


async def read_parts(request: web.Request, upload: Upload, limit: int) -> bool:
    """Reads the multipart body into `upload`; True when it held a file."""
    has_file = False
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or not part.name:
            continue  # nested multipart or an unnamed part: not ours
        if part.name == "file" and not has_file:
            await save_file(part, upload, limit)
            has_file = True
        else:
            upload.fields.setdefault(part.name, []).append(await read_field(part))
    return has_file


async def receive(request: web.Request) -> Upload:
    """The request's form, its file in a temporary file (the caller discards it); raises ApiError."""
    limit = request.app[state.UPLOAD_LIMIT]
    check_capacity(request.app)
    if request.content_length is not None and request.content_length > limit + MAX_FIELD_BYTES * 8:
        raise too_large(limit)
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, "expected a multipart/form-data body with the audio in field 'file'", "file")
    fd, name = tempfile.mkstemp(prefix="classrec-upload-")
    os.close(fd)
    upload = Upload(Path(name))
    try:
        has_file = await read_parts(request, upload, limit)
    except (ValueError, AssertionError, KeyError) as e:  # a malformed body
        upload.discard()
        raise ApiError(400, f"malformed multipart body: {e}", "file") from None
    except BaseException:  # refused (ApiError), or the client went away
        upload.discard()
        raise
    if not has_file or upload.size == 0:
        upload.discard()
        raise ApiError(400, "no audio: send the recording in the multipart field 'file'", "file")
    return upload
