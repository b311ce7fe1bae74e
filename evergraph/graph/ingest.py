"""Reading documents from JSONL, CSV/TSV, plain text and Markdown files, or folders of them.

Streaming: records are yielded one at a time as the file is read, so a file of any size reads
in constant memory (a `.json` file holding one array is the exception: it is parsed whole).

Fields are found under common names (`FIELDS`): `abstract` is the text, `published` the date,
`url` the URI, and so on; fields with no known name go to the metadata. A record that cannot be
read (bad JSON, a row with the wrong number of columns, an unreadable date, empty text) is
reported as `file:line`, counted in the `ReadReport` and skipped; reading goes on. A file
whose first record has no text field at all is the user's mistake, not a bad line: that is a
`UsageError` naming the fields the file does have.

Identity: a document's `key` is the user's id for it (an `id` field; for a text or Markdown
file, its path). Its source id is a hash of its content (title, text, date), so re-ingesting the
same content finds the same source, and a changed document is a new source with the same key
(the constructor then supersedes the old version). Records without an id have no key: they are
deduplicated by content only, because a key made from a line number would pair a document with
whatever moved onto its line.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from evergraph.errors import UsageError
from evergraph.graph.models import Source, content_id

log = logging.getLogger(__name__)

FIELDS: dict[str, tuple[str, ...]] = {  # first name present wins
    "key": ("id", "doc_id", "document_id", "doc_key", "key", "uid", "guid"),
    "title": ("title", "headline", "name"),
    "text": ("text", "body", "content", "abstract", "summary", "description"),
    "date": (
        "date",
        "published",
        "published_at",
        "publication_date",
        "pub_date",
        "created",
        "created_at",
        "timestamp",
        "year",
    ),
    "uri": ("uri", "url", "source", "link"),
}
JSONL = (".jsonl", ".ndjson", ".json")
CSV = {".csv": ",", ".tsv": "\t"}
TEXT = (".txt", ".text")
MARKDOWN = (".md", ".markdown")
MAX_PROBLEMS = 100  # kept in a report; all of them are counted and logged

csv.field_size_limit(sys.maxsize)  # a full article in one cell is normal here


@dataclass(frozen=True)
class Document:
    """One document as read, before it becomes a `Source`."""

    key: str
    title: str
    text: str
    date: datetime | None
    uri: str
    metadata: dict[str, Any]
    origin: str  # "path:line", for messages

    @property
    def source_id(self) -> str:
        """The content hash: what decides whether this exact version is stored already."""
        return content_id(
            "source", self.title, self.text, self.date.isoformat() if self.date else ""
        )

    def to_source(self, *, ingested_at: datetime | None = None) -> Source:
        extra = {} if ingested_at is None else {"ingested_at": ingested_at}
        return Source(
            id=self.source_id,
            key=self.key,
            title=self.title,
            text=self.text,
            uri=self.uri,
            published_at=self.date,
            metadata=self.metadata,
            **extra,
        )


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class ReadReport:
    """What was read and what was skipped; the first `MAX_PROBLEMS` problems are kept."""

    documents: int = 0
    skipped: int = 0
    problems: list[Problem] = field(default_factory=list)

    def problem(self, path: Path, line: int, message: str) -> None:
        found = Problem(str(path), line, message)
        log.warning("skipped %s", found)
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(found)


class _BadRecord(ValueError):
    """A record to skip, with the reason."""


def parse_date(value: Any) -> datetime | None:
    """ISO 8601 (with or without time or zone), a year, year-month, RFC 2822, or a datetime;
    naive times are UTC. Raises ValueError for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int) and not isinstance(value, bool) and 1000 <= value <= 9999:
        return datetime(value, 1, 1, tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a date: {value!r}")
    text = value.strip()
    if m := re.fullmatch(r"(\d{4})(?:-(\d{1,2}))?", text):
        return datetime(int(m[1]), int(m[2] or 1), 1, tzinfo=UTC)
    try:
        return parse_date(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        return parse_date(parsedate_to_datetime(text))
    except (TypeError, ValueError):
        raise ValueError(f"not a date: {value!r}") from None


def _pick(record: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    lowered = {k.lower(): k for k in record}
    for name in names:
        if name in lowered and record[lowered[name]] not in (None, ""):
            return lowered[name], record[lowered[name]]
    return None, None


def _text_field(fieldnames: Iterable[str], text_field: str | None) -> str | None:
    names = {f.lower(): f for f in fieldnames}
    for name in (text_field,) if text_field else FIELDS["text"]:
        if name.lower() in names:
            return names[name.lower()]
    return None


def _no_text(path: Path, fields: Iterable[str], text_field: str | None) -> UsageError:
    wanted = text_field or " / ".join(FIELDS["text"])
    return UsageError(
        f"{path} has no text field ({wanted}); its fields are: {', '.join(fields) or 'none'}",
        fix="rename the field holding the text to one of the names above",
    )


def _document(record: Mapping[str, Any], text_key: str, origin: str) -> Document:
    text = record.get(text_key)
    if not isinstance(text, str) or not text.strip():
        raise _BadRecord(f"the text field {text_key!r} is empty or not text")
    used = {text_key}
    found: dict[str, Any] = {}
    for role in ("key", "title", "date", "uri"):
        name, value = _pick(record, FIELDS[role])
        if name is not None:
            used.add(name)
            found[role] = value
    try:
        when = parse_date(found.get("date"))
    except ValueError as e:
        raise _BadRecord(str(e)) from None
    metadata = (
        dict(record.get("metadata") or {}) if isinstance(record.get("metadata"), dict) else {}
    )
    used.add("metadata")
    metadata.update({k: v for k, v in record.items() if k not in used and k is not None})
    return Document(
        key=str(found.get("key", "")),
        title=str(found.get("title", "")).strip(),
        text=text,
        date=when,
        uri=str(found.get("uri", "")),
        metadata=metadata,
        origin=origin,
    )


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines; bytes that are not UTF-8 are replaced (and logged), not fatal."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                log.warning("%s:%d: not UTF-8; undecodable bytes replaced", path, number)
                yield number, raw.decode("utf-8", errors="replace")


def _records(
    path: Path, numbered: Iterable[tuple[int, Any]], text_field: str | None, report: ReadReport
) -> Iterator[Document]:
    """Documents from (line, parsed record or exception) pairs, with the file's rules."""
    text_key: str | None = None
    for number, record in numbered:
        try:
            if isinstance(record, Exception):
                raise _BadRecord(str(record))
            if not isinstance(record, dict):
                raise _BadRecord(f"a record must be an object, not {type(record).__name__}")
            key = _text_field(record, text_field)
            if key is None:
                if text_key is None:
                    raise _no_text(path, record, text_field)
                raise _BadRecord("no text field")
            text_key = key
            document = _document(record, key, f"{path}:{number}")
        except _BadRecord as e:
            report.problem(path, number, str(e))
            continue
        report.documents += 1
        yield document


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    for number, line in _lines(path):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as e:
                yield number, _BadRecord(f"not JSON: {e.msg} (column {e.colno})")


def _json(path: Path) -> Iterator[tuple[int, Any]]:
    """A `.json` file is JSON Lines unless it starts with `[`: then one array of records,
    numbered by item instead of line."""
    with path.open("rb") as f:
        head = f.read(4096).lstrip()
    if not head.startswith(b"["):
        yield from _jsonl(path)
        return
    try:
        items = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(
            f"{path} is not valid JSON: {e}", fix="fix the file or write JSON Lines"
        ) from None
    yield from enumerate(items, 1)


def _csv(path: Path, delimiter: str, text_field: str | None) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader((line for _, line in _lines(path)), delimiter=delimiter)
    fields = reader.fieldnames or []
    if not fields:
        return  # an empty file
    if _text_field(fields, text_field) is None:
        raise _no_text(path, fields, text_field)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield reader.line_num, _BadRecord(f"not CSV: {e}")
            continue
        if None in row:
            yield reader.line_num, _BadRecord(f"{len(row[None])} more fields than the header")
        elif None in row.values():
            yield reader.line_num, _BadRecord("fewer fields than the header")
        else:
            yield reader.line_num, row


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """Markdown front matter as flat `key: value` pairs (no nesting), and the body."""
    m = re.match(r"---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", text, re.DOTALL)
    if m is None:
        return {}, text
    pairs = (line.split(":", 1) for line in m[1].splitlines() if ":" in line)
    return {k.strip(): v.strip().strip("'\"") for k, v in pairs}, text[m.end() :]


def _text_file(path: Path, report: ReadReport) -> Iterator[Document]:
    """One document per file: its path is its key; Markdown front matter and a first heading
    give the title, date and id."""
    text = "".join(line for _, line in _lines(path))
    markdown = path.suffix.lower() in MARKDOWN
    meta, body = _front_matter(text) if markdown else ({}, text)
    heading = re.search(r"^#[ \t]+(.+?)[ \t#]*$", body, re.MULTILINE) if markdown else None
    if heading and not meta.get("title"):
        meta["title"] = heading[1]
    record = {"key": path.as_posix(), "title": path.stem, **meta, "text": body}
    if _pick(record, FIELDS["uri"])[0] is None:
        record["uri"] = path.resolve().as_uri()
    yield from _records(path, [(1, record)], "text", report)


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    if not root.exists():
        raise UsageError(f"{root} does not exist", fix="pass existing files or folders")
    for path in sorted(root.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
        if path.is_file() and not hidden and _kind(path) is not None:
            yield path


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in JSONL:
        return "json"
    if suffix in CSV:
        return "csv"
    if suffix in TEXT or suffix in MARKDOWN:
        return "text"
    return None


def read_documents(
    paths: Iterable[str | Path],
    *,
    report: ReadReport | None = None,
    text_field: str | None = None,
) -> Iterator[Document]:
    """Every document in the given files and folders (folders recursively, in name order,
    skipping hidden and unknown files). `text_field` names the text column when it has an
    unusual name. Problems go to `report` (and the log)."""
    report = report if report is not None else ReadReport()
    for root in map(Path, paths):
        for path in _files(root):
            kind = _kind(path)
            if kind is None:
                raise UsageError(
                    f"{path} is not a file Evergraph reads",
                    fix="pass .jsonl, .json, .csv, .tsv, .txt or .md files (or folders)",
                )
            if kind == "json":
                numbered = _json(path) if path.suffix.lower() == ".json" else _jsonl(path)
                yield from _records(path, numbered, text_field, report)
            elif kind == "csv":
                delimiter = CSV[path.suffix.lower()]
                yield from _records(path, _csv(path, delimiter, text_field), text_field, report)
            else:
                yield from _text_file(path, report)
