"""Splitting content into overlapping passages for search.

Chunks end at a paragraph, line or sentence break when one falls in the last part of the window,
so a passage rarely stops mid-sentence; consecutive chunks overlap so a phrase that straddles a
boundary is whole in one of them.
"""

from __future__ import annotations

BREAKS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")


def split_into_chunks(text: str, *, size: int, overlap: int) -> list[str]:
    text = text.strip()
    if not text:
        return []
    overlap = min(overlap, size // 2)
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            window = text[start:end]
            for mark in BREAKS:
                cut = window.rfind(mark, size // 2)
                if cut != -1:
                    end = start + cut + len(mark)
                    break
        piece = text[start:end].strip()
        if piece:
            chunks.append(piece)
        if end >= len(text):
            break
        next_start = end - overlap
        # Start the overlap at a word boundary.
        space = text.find(" ", next_start, end)
        start = space + 1 if space != -1 else next_start
    return chunks


def embedding_input(title: str, text: str) -> str:
    """What a chunk's vector is computed from. The title leads every passage: a chunk deep in a
    document still says what it is about."""
    return f"{title}\n\n{text}" if title else text
