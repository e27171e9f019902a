"""Checks shared by the figure tests: file formats by their magic bytes, PNG pixel size, and
boxes of drawn artists in display pixels (to find overlaps)."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "svg": b"<?xml"}


def file_format(path: Path) -> str:
    """``png``, ``svg`` or ``pdf`` from the file's first bytes (an SVG must hold ``<svg``)."""
    head = Path(path).read_bytes()[:400]
    for kind, magic in MAGIC.items():
        if head.startswith(magic) and (kind != "svg" or b"<svg" in head):
            return kind
    raise AssertionError(f"{path} is neither PNG, SVG nor PDF: {head[:20]!r}")


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from the PNG's IHDR chunk."""
    data = Path(path).read_bytes()[:24]
    assert data[:8] == MAGIC["png"], f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def renderer(figure):
    figure.canvas.draw()
    return figure.canvas.get_renderer()


def text_boxes(figure, texts: Iterable) -> list[tuple[str, object]]:
    """(text, display bbox) of each non-empty text artist."""
    r = renderer(figure)
    return [
        (t.get_text(), t.get_window_extent(r))
        for t in texts
        if t.get_visible() and t.get_text().strip()
    ]


def overlapping(
    boxes: list[tuple[str, object]],
    others: list[tuple[str, object]] | None = None,
    pad: float = 0.0,
) -> list[tuple[str, str]]:
    """Pairs of boxes that overlap (each pair once; within ``boxes`` when ``others`` is None)."""
    pairs = []
    if others is None:
        for i, (a, box_a) in enumerate(boxes):
            for b, box_b in boxes[i + 1 :]:
                if _overlap(box_a, box_b, pad):
                    pairs.append((a, b))
        return pairs
    for a, box_a in boxes:
        for b, box_b in others:
            if _overlap(box_a, box_b, pad):
                pairs.append((a, b))
    return pairs


def _overlap(a, b, pad: float) -> bool:
    return a.x0 < b.x1 - pad and b.x0 < a.x1 - pad and a.y0 < b.y1 - pad and b.y0 < a.y1 - pad


def inside(figure, boxes: list[tuple[str, object]]) -> list[str]:
    """Texts whose box leaves the figure (would be cut)."""
    frame = figure.bbox
    return [
        t
        for t, b in boxes
        if b.x0 < frame.x0 - 0.5
        or b.x1 > frame.x1 + 0.5
        or b.y0 < frame.y0 - 0.5
        or b.y1 > frame.y1 + 0.5
    ]
