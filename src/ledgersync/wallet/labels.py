"""BIP-329 wallet labels: records, and their JSON Lines export format.

A record is a JSON object with ``type`` (``tx``, ``addr``, ``pubkey``, ``input``, ``output``,
``xpub``), ``ref`` (a txid, an address, a key, ``txid:index`` or an xpub) and optionally
``label``, ``origin`` (an abbreviated output descriptor), ``spendable`` (outputs) and BIP-329's
extras (``height``, ``time``, ``fee``, ``value``, ``rate``, ``keypath``, ``fmv``, ``heights``).
Records are kept whole: fields we do not know travel with them.

A file is UTF-8, one record per line. Reading is all or nothing: a bad line raises
:class:`~.errors.LabelsFileError` with its line number; records of unknown types are
ignored, as BIP-329 asks of importers.
"""

from __future__ import annotations

import json
from typing import Any

from .document import LABEL_TYPES, InvalidModule, validate_label_record
from .errors import LabelsFileError

#: Field order in exported lines (other fields follow in their own order).
FIELD_ORDER = ("type", "ref", "label", "origin", "spendable")
MAX_LABEL_LENGTH = 255  # BIP-329's suggested limit; longer labels are kept, exporters may cut


def ordered_record(record: dict[str, Any]) -> dict[str, Any]:
    first = {key: record[key] for key in FIELD_ORDER if key in record}
    return first | {key: value for key, value in record.items() if key not in first}


def read_bip329(text: str | bytes) -> list[dict[str, Any]]:
    """The records of a BIP-329 file, in file order; unknown types are left out."""
    if isinstance(text, bytes):
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            number = text[: exc.start].count(b"\n") + 1
            raise LabelsFileError(number, "the file is not UTF-8") from exc
    else:
        decoded = text
    records: list[dict[str, Any]] = []
    for number, line in enumerate(decoded.removeprefix("\ufeff").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            raise LabelsFileError(number, f"not a JSON object ({exc})") from exc
        if not isinstance(value, dict):
            raise LabelsFileError(number, "not a JSON object")
        if not isinstance(value.get("type"), str):
            raise LabelsFileError(number, "a record needs a 'type'")
        if value["type"] not in LABEL_TYPES:
            continue
        try:
            validate_label_record(value, "record")
        except InvalidModule as exc:
            raise LabelsFileError(number, str(exc).removeprefix("record: ")) from exc
        records.append(value)
    return records


def write_bip329(records: list[dict[str, Any]]) -> str:
    """JSON Lines, one record per line, UTF-8 text (not ASCII-escaped)."""
    return "".join(
        json.dumps(ordered_record(record), ensure_ascii=False) + "\n" for record in records
    )
