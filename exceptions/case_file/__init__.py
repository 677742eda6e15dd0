"""The case file of one event or one exception case (DESIGN.md sections 1 and 6): every record
of the event and its replays, every audit entry about them, who owned and who approved at the
time, with hashes and the chain head, as one JSON document and one printable page."""

from __future__ import annotations

from exceptions.case_file.document import FORMAT, case_file_body, case_file_document
from exceptions.case_file.records import CaseFileRecords, case_file_records

__all__ = [
    "FORMAT",
    "CaseFileRecords",
    "case_file_body",
    "case_file_document",
    "case_file_records",
]
