"""Splitting a document into chunks: whole paragraphs where they fit, else sentences, else words.

Every chunk is a slice of the source text (so a quote checked against a chunk is also verbatim in
the source), at most `max_chars` long. When a paragraph has to be split, the next chunk repeats
the last sentences of the previous one, up to `overlap` characters, so that a relation stated
across the cut is still whole in one chunk; a cut between paragraphs needs no overlap.

The default of 2,000 characters keeps an abstract (arXiv caps them at 1,920) in one chunk, and
so in one extraction call; it is about 500 tokens, which small models still read well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evergraph.errors import UsageError
from evergraph.graph.models import Chunk, Source, content_id

MAX_CHARS = 2000
OVERLAP = 200

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+")  # closing quotes too
_TRIM = re.compile(r"\S(?:.*\S)?", re.DOTALL)


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    opens_paragraph: bool


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    m = _TRIM.search(text, start, end)
    return None if m is None else m.span()


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """A sentence longer than a chunk, cut at the last whitespace that fits (or hard)."""
    spans = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars + 1)
        cut = start + max_chars if cut <= start else cut
        spans.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    spans.append((start, end))
    return [s for s in (_trimmed(text, a, b) for a, b in spans) if s is not None]


def _pieces(text: str, max_chars: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    para_start = 0
    for para_end in [m.start() for m in _PARAGRAPH_BREAK.finditer(text)] + [len(text)]:
        first = True
        sentence_start = para_start
        bounds = [m.end() for m in _SENTENCE_END.finditer(text, para_start, para_end)]
        for sentence_end in [*bounds, para_end]:
            span = _trimmed(text, sentence_start, sentence_end)
            sentence_start = sentence_end
            if span is None:
                continue
            for a, b in _split_long(text, *span, max_chars):
                pieces.append(_Piece(a, b, first))
                first = False
        match = _PARAGRAPH_BREAK.match(text, para_end)
        para_start = match.end() if match else para_end
    return pieces


def chunk_spans(
    text: str, *, max_chars: int = MAX_CHARS, overlap: int = OVERLAP
) -> list[tuple[int, int]]:
    """(start, end) offsets of the chunks of `text`, in order; none for blank text."""
    if max_chars < 1 or not 0 <= overlap < max_chars:
        raise UsageError(
            f"chunks need max_chars >= 1 and 0 <= overlap < max_chars (got {max_chars}, {overlap})",
            fix="choose a smaller overlap than the chunk size",
        )
    pieces = _pieces(text, max_chars)
    paragraph_end: dict[int, int] = {}  # piece index -> end of the paragraph holding it
    for i in reversed(range(len(pieces))):
        nxt = i + 1
        end = pieces[i].end if nxt == len(pieces) or pieces[nxt].opens_paragraph else None
        paragraph_end[i] = end if end is not None else paragraph_end[nxt]
    spans: list[tuple[int, int]] = []
    current: list[_Piece] = []
    for i, piece in enumerate(pieces):
        if current:
            whole_paragraph_fits_alone = paragraph_end[i] - piece.start <= max_chars
            too_long = piece.end - current[0].start > max_chars
            early = (
                piece.opens_paragraph
                and whole_paragraph_fits_alone
                and paragraph_end[i] - current[0].start > max_chars
            )
            if too_long or early:
                spans.append((current[0].start, current[-1].end))
                current = [] if piece.opens_paragraph else _tail(current, piece, max_chars, overlap)
        current.append(piece)
    if current:
        spans.append((current[0].start, current[-1].end))
    return spans


def _tail(previous: list[_Piece], nxt: _Piece, max_chars: int, overlap: int) -> list[_Piece]:
    """The last pieces of the previous chunk to repeat: within `overlap` characters, leaving
    room for the next piece, never the whole previous chunk (the text must move on)."""
    end = previous[-1].end
    tail: list[_Piece] = []
    for p in reversed(previous[1:]):
        if end - p.start > overlap or nxt.end - p.start > max_chars:
            break
        tail.insert(0, p)
    return tail


def chunk_source(
    source: Source, *, max_chars: int = MAX_CHARS, overlap: int = OVERLAP
) -> list[Chunk]:
    """The source's chunks, with ids from the source id, position and text: the same document
    always gives the same chunks."""
    spans = chunk_spans(source.text, max_chars=max_chars, overlap=overlap)
    return [
        Chunk(
            id=content_id("chunk", source.id, str(i), source.text[a:b]),
            source_id=source.id,
            ordinal=i,
            text=source.text[a:b],
        )
        for i, (a, b) in enumerate(spans)
    ]
