"""Reading documents (JSONL, JSON, CSV/TSV, text, Markdown, folders) and chunking them."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evergraph.errors import UsageError
from evergraph.graph.chunking import chunk_source, chunk_spans
from evergraph.graph.ingest import ReadReport, parse_date, read_documents
from evergraph.graph.models import Source


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, *records: object) -> Path:
    return write(
        path, "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    )


# -- JSON Lines ------------------------------------------------------------------------------------


def test_jsonl_fields_by_their_common_names(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "arxiv.jsonl",
        {
            "id": "0511217v3",
            "title": " Trust but verify ",
            "abstract": "Black holes are real.",
            "published": "2005-11-17T16:26:58+00:00",
            "url": "https://arxiv.org/abs/0511217",
            "authors": ["Scott A. Hughes"],
            "metadata": {"source": "arXiv"},
        },
    )
    (doc,) = read_documents([path])
    assert (doc.key, doc.title, doc.text) == (
        "0511217v3",
        "Trust but verify",
        "Black holes are real.",
    )
    assert doc.date == datetime(2005, 11, 17, 16, 26, 58, tzinfo=UTC)
    assert doc.uri == "https://arxiv.org/abs/0511217"
    assert doc.metadata == {"source": "arXiv", "authors": ["Scott A. Hughes"]}
    assert doc.origin == f"{path}:1"


def test_bad_lines_are_reported_with_their_line_and_skipped(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "docs.jsonl",
        {"id": 1, "text": "first"},
        "{not json",
        "[1, 2]",
        {"id": 4, "text": "   "},
        {"id": 5, "text": "dated", "date": "next Tuesday"},
        {"id": 6, "title": "no text at all"},
        "",
        {"id": 8, "text": "last", "year": 2004},
    )
    report = ReadReport()
    docs = list(read_documents([path], report=report))
    assert [d.key for d in docs] == ["1", "8"]
    assert docs[1].date == datetime(2004, 1, 1, tzinfo=UTC)
    assert (report.documents, report.skipped) == (2, 5)
    assert [p.line for p in report.problems] == [2, 3, 4, 5, 6]
    assert str(report.problems[0]).startswith(f"{path}:2: not JSON")
    assert "must be an object" in report.problems[1].message
    assert "not a date" in report.problems[3].message


def test_a_file_without_a_text_field_is_a_usage_error_naming_its_fields(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "scierc.json", {"doc_key": "X", "sentences": [["a"]], "ner": []})
    with pytest.raises(UsageError, match="no text field") as e:
        list(read_documents([path]))
    assert "doc_key, sentences, ner" in str(e.value)
    (doc,) = read_documents(
        [jsonl(tmp_path / "b.jsonl", {"body_text": "x"})], text_field="body_text"
    )
    assert doc.text == "x"


def test_reading_streams(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "docs.jsonl", {"text": "one"}, "{bad", {"text": "three"})
    report = ReadReport()
    docs = read_documents([path], report=report)
    assert next(docs).text == "one"
    assert report.skipped == 0  # the rest of the file is not read yet
    assert [d.text for d in docs] == ["three"] and report.skipped == 1


def test_undecodable_bytes_are_replaced(tmp_path: Path) -> None:
    path = write(tmp_path / "latin.jsonl", b'{"text": "caf\xe9"}\n')
    (doc,) = read_documents([path])
    assert doc.text == "caf\ufffd"


def test_a_json_array(tmp_path: Path) -> None:
    path = write(tmp_path / "docs.json", json.dumps([{"text": "a"}, 3, {"content": "c"}]))
    report = ReadReport()
    assert [d.text for d in read_documents([path], report=report)] == ["a", "c"]
    assert [p.line for p in report.problems] == [2]  # the item number
    with pytest.raises(UsageError, match="not valid JSON"):
        list(read_documents([write(tmp_path / "bad.json", "[{")]))


# -- CSV ----------------------------------------------------------------------------------------


def test_csv_rows_with_the_wrong_number_of_fields_are_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "docs.csv",
        "\ufeffdoc_id,Headline,Body,pub_date,lang\n"
        'a,First,"Text, with a comma\nand a newline",2020-05-01,en\n'
        "b,Second,too,many,fields,here\n"
        "c,Third\n"
        "d,Fourth,Fine,2021,de\n",
    )
    report = ReadReport()
    docs = list(read_documents([path], report=report))
    assert [(d.key, d.title) for d in docs] == [("a", "First"), ("d", "Fourth")]
    assert docs[0].text == "Text, with a comma\nand a newline"
    assert docs[0].metadata == {"lang": "en"}
    assert [p.line for p in report.problems] == [4, 5]
    assert "more fields" in report.problems[0].message
    assert "fewer fields" in report.problems[1].message


def test_tsv_and_a_csv_without_a_text_column(tmp_path: Path) -> None:
    (doc,) = read_documents([write(tmp_path / "t.tsv", "id\ttext\n1\thello\n")])
    assert (doc.key, doc.text) == ("1", "hello")
    with pytest.raises(UsageError, match="fields are: id, name"):
        list(read_documents([write(tmp_path / "x.csv", "id,name\n1,a\n")]))
    assert list(read_documents([write(tmp_path / "empty.csv", "")])) == []


# -- text and Markdown files, folders --------------------------------------------------------------


def test_text_and_markdown_files_in_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "notes"
    write(
        root / "b.md", "---\ntitle: 'Front'\ndate: 2021-03-04\ntags: x, y\n---\n# Heading\nBody.\n"
    )
    write(root / "sub" / "a.md", "Intro\n\n# The heading\n\nMore.")
    write(root / "c.txt", "Plain text.")
    write(root / ".hidden" / "d.txt", "hidden")
    write(root / "image.png", b"\x89PNG")
    docs = list(read_documents([root]))
    assert [d.key for d in docs] == [(root / f).as_posix() for f in ("b.md", "c.txt", "sub/a.md")]
    b, c, a = docs
    assert (b.title, b.date, b.metadata) == (
        "Front",
        datetime(2021, 3, 4, tzinfo=UTC),
        {"tags": "x, y"},
    )
    assert b.text == "# Heading\nBody.\n"
    assert a.title == "The heading" and c.title == "c"
    assert c.uri == (root / "c.txt").resolve().as_uri()


def test_paths_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        list(read_documents([tmp_path / "missing"]))
    with pytest.raises(UsageError, match="not a file Evergraph reads"):
        list(read_documents([write(tmp_path / "x.pdf", b"%PDF")]))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2005-11-17T16:26:58Z", datetime(2005, 11, 17, 16, 26, 58, tzinfo=UTC)),
        ("2005-11-17", datetime(2005, 11, 17, tzinfo=UTC)),
        ("2005-11", datetime(2005, 11, 1, tzinfo=UTC)),
        ("1999", datetime(1999, 1, 1, tzinfo=UTC)),
        (1999, datetime(1999, 1, 1, tzinfo=UTC)),
        ("Thu, 17 Nov 2005 16:26:58 +0000", datetime(2005, 11, 17, 16, 26, 58, tzinfo=UTC)),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(value: object, expected: datetime | None) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize("value", ["yesterday", 12345678, True, [2020]])
def test_parse_date_refuses_what_is_no_date(value: object) -> None:
    with pytest.raises(ValueError, match="not a date"):
        parse_date(value)


def test_the_source_id_is_the_content_and_the_key_is_the_document(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "d.jsonl",
        {"id": "k", "title": "T", "text": "x", "date": "2020"},
        {"id": "k", "title": "T", "text": "x", "date": "2020", "extra": 1},
        {"id": "k", "title": "T", "text": "y", "date": "2020"},
    )
    one, same, changed = read_documents([path])
    assert one.source_id == same.source_id != changed.source_id
    source = one.to_source(ingested_at=datetime(2024, 1, 1, tzinfo=UTC))
    assert source == Source(
        id=one.source_id,
        key="k",
        title="T",
        text="x",
        published_at=datetime(2020, 1, 1, tzinfo=UTC),
        ingested_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


# -- chunking -----------------------------------------------------------------------------------


def paragraphs(*sizes: int) -> str:
    return "\n\n".join(
        " ".join(f"Sentence {p}.{i} says a thing." for i in range(n)) for p, n in enumerate(sizes)
    )


def test_short_text_is_one_chunk_and_blank_text_none() -> None:
    assert chunk_spans("  One paragraph.  \n") == [(2, 16)]
    assert chunk_spans(" \n\n ") == []


def test_paragraphs_stay_whole_when_they_fit() -> None:
    text = paragraphs(5, 5, 5)  # about 140 characters each
    spans = chunk_spans(text, max_chars=300, overlap=50)
    chunks = [text[a:b] for a, b in spans]
    assert len(chunks) == 2
    assert chunks[0].count("\n\n") == 1 and chunks[1].startswith("Sentence 2.0")


def test_a_long_paragraph_splits_at_sentences_with_overlap() -> None:
    text = paragraphs(40)
    chunks = [text[a:b] for a, b in chunk_spans(text, max_chars=300, overlap=80)]
    assert all(len(c) <= 300 for c in chunks) and len(chunks) > 4
    assert all(c.startswith("Sentence") and c.endswith(".") for c in chunks)
    for prev, nxt in itertools.pairwise(chunks):
        first = nxt.split(". ")[0] + "."
        assert first in prev  # the next chunk repeats the previous one's last sentence(s)


def test_words_longer_than_a_chunk_are_cut() -> None:
    text = "x" * 250 + " tail"
    assert [text[a:b] for a, b in chunk_spans(text, max_chars=100, overlap=10)] == [
        "x" * 100,
        "x" * 100,
        "x" * 50 + " tail",
    ]


def test_chunks_are_slices_of_the_text_covering_every_word() -> None:
    """Random texts: every chunk is a slice, within the size, and every word is in one."""
    rng = random.Random(7)
    words = ["alpha", "beta.", "gamma!", "delta?", "\n\n", "epsilon", "x" * 40, "zeta."]
    for _ in range(200):
        text = " ".join(rng.choice(words) for _ in range(rng.randrange(1, 200)))
        max_chars = rng.randrange(20, 400)
        spans = chunk_spans(text, max_chars=max_chars, overlap=rng.randrange(0, max_chars // 2))
        assert all(0 <= a < b <= len(text) and b - a <= max_chars for a, b in spans)
        assert [a for a, _ in spans] == sorted({a for a, _ in spans})  # moving forward
        covered = set().union(*(range(a, b) for a, b in spans)) if spans else set()
        assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_chunk_ids_are_deterministic() -> None:
    source = Source(id="s", text=paragraphs(30, 30))
    first, again = chunk_source(source, max_chars=500), chunk_source(source, max_chars=500)
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first) > 1
    assert [c.ordinal for c in first] == list(range(len(first)))
    assert all(c.text in source.text and c.source_id == "s" for c in first)


@pytest.mark.parametrize(("max_chars", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_bad_chunk_sizes_are_usage_errors(max_chars: int, overlap: int) -> None:
    with pytest.raises(UsageError, match="overlap"):
        chunk_spans("text", max_chars=max_chars, overlap=overlap)
