"""How far a DICOM file in the deflated transfer syntax inflates, counted without holding it.

pydicom inflates the deflated transfer syntax (1.2.840.10008.1.2.1.99) in one unbounded
``zlib.decompress``, also with ``stop_before_pixels``: a 1 MB file can become gigabytes in memory.
The file meta is read first (pydicom's own readers); for that syntax the rest is inflated here
a chunk at a time and only counted, so no more than ``INFLATE_CHUNK`` bytes are held. A reader
refuses the file past its limit and hands pydicom only files known to inflate within it.
"""

from __future__ import annotations

import zlib
from typing import BinaryIO

from pydicom.filereader import read_dataset, read_preamble
from pydicom.uid import DeflatedExplicitVRLittleEndian

INFLATE_CHUNK = 1 << 20


def _transfer_syntax(stream: BinaryIO) -> str | None:
    """The file meta's ``TransferSyntaxUID``; ``stream`` is left at the data set.

    As pydicom reads it: explicit VR, else (a meta that does not parse so) implicit VR.
    """
    start = stream.tell()
    for implicit in (False, True):
        stream.seek(start)
        meta = read_dataset(stream, implicit, True, stop_when=lambda tag, vr, length: tag >> 16 != 2)
        try:
            return meta.get("TransferSyntaxUID")
        except NotImplementedError:
            continue
    return None


def inflates_past(stream: BinaryIO, limit: int) -> bool:
    """Whether the DICOM file in ``stream`` is deflated and inflates to more than ``limit`` bytes.

    Raises what pydicom's readers raise on a file that is no DICOM (``DICOM_DECODE_ERRORS``).
    """
    read_preamble(stream, False)
    if _transfer_syntax(stream) != DeflatedExplicitVRLittleEndian:
        return False
    inflater, size = zlib.decompressobj(-zlib.MAX_WBITS), 0
    while compressed := stream.read(INFLATE_CHUNK):
        while compressed:
            size += len(inflater.decompress(compressed, INFLATE_CHUNK))
            compressed = inflater.unconsumed_tail
            if size > limit:
                return True
    return False
