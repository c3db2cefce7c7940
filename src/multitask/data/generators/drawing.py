"""Drawing primitives: seeded random helpers, colour arithmetic and a canvas that also draws an object-id map.

>>> import numpy as np
>>> from PIL import Image
>>> cv = Canvas(Image.new("RGB", (8, 8)))
>>> cv.track, cv.current = True, 3
>>> cv.rect((0, 0, 3, 3), (255, 0, 0))
>>> int(np.count_nonzero(np.asarray(cv.ids) == 3)), mix((0, 0, 0), (255, 255, 255), 0.5)
(16, (128, 128, 128))
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw

from multitask.data.generators.palette import Colour

T = TypeVar("T")


def uniform(rng: np.random.Generator, a: float, b: float) -> float:
    return a + (b - a) * float(rng.random())


def pick(rng: np.random.Generator, seq: Sequence[T]) -> T:
    return seq[int(rng.integers(len(seq)))]


def clip8(x: float) -> int:
    return 0 if x < 0 else 255 if x > 255 else int(x + 0.5)


def jitter(rng: np.random.Generator, c: Colour, amount: int = 12) -> Colour:
    d = rng.integers(-amount, amount + 1, size=3)
    return (clip8(c[0] + d[0]), clip8(c[1] + d[1]), clip8(c[2] + d[2]))


def mix(a: Colour, b: Colour, t: float) -> Colour:
    return (
        clip8(a[0] + (b[0] - a[0]) * t),
        clip8(a[1] + (b[1] - a[1]) * t),
        clip8(a[2] + (b[2] - a[2]) * t),
    )


def hsv(h: float, s: float, v: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (clip8(r * 255), clip8(g * 255), clip8(b * 255))


class Canvas:
    """Draws on the RGB picture and, when ``track`` is on, writes ``current`` into an object-id map."""

    def __init__(self, image: Image.Image) -> None:
        self.size = image.size[0]
        self.image = image
        self.ids = Image.new("L", image.size, 0)
        self.draw = ImageDraw.Draw(image)
        self.idraw = ImageDraw.Draw(self.ids)
        self.track = False
        self.current = 0

    def polygon(self, pts: Sequence[tuple[float, float]], fill: Colour) -> None:
        self.draw.polygon(pts, fill=fill)
        if self.track:
            self.idraw.polygon(pts, fill=self.current)

    def rect(self, box: Sequence[float], fill: Colour) -> None:
        x0, y0, x1, y1 = box
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        self.draw.rectangle(box, fill=fill)
        if self.track:
            self.idraw.rectangle(box, fill=self.current)

    def rounded(self, box: Sequence[float], radius: float, fill: Colour) -> None:
        x0, y0, x1, y1 = box
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        radius = max(0, min(int(radius), int((box[2] - box[0]) / 2), int((box[3] - box[1]) / 2)))
        self.draw.rounded_rectangle(box, radius=radius, fill=fill)
        if self.track:
            self.idraw.rounded_rectangle(box, radius=radius, fill=self.current)

    def ellipse(
        self, cx: float, cy: float, rx: float, ry: float | None = None, fill: Colour = (0, 0, 0)
    ) -> None:
        ry = rx if ry is None else ry
        box = (cx - rx, cy - ry, cx + rx, cy + ry)
        self.draw.ellipse(box, fill=fill)
        if self.track:
            self.idraw.ellipse(box, fill=self.current)

    def chord(self, cx: float, cy: float, r: float, start: float, end: float, fill: Colour) -> None:
        box = (cx - r, cy - r, cx + r, cy + r)
        self.draw.chord(box, start, end, fill=fill)
        if self.track:
            self.idraw.chord(box, start, end, fill=self.current)

    def paste(self, image: Image.Image, mask: Image.Image, box: tuple[int, int, int, int]) -> None:
        self.image.paste(image, box, mask)
        if self.track:
            self.ids.paste(self.current, box, mask)

    def line(self, pts: Sequence[tuple[float, float]], fill: Colour, width: float) -> None:
        w = max(1, int(round(width)))
        self.draw.line(pts, fill=fill, width=w, joint="curve" if len(pts) > 2 else None)
        if self.track:
            self.idraw.line(pts, fill=self.current, width=w)


def wedge(
    p0: tuple[float, float], p1: tuple[float, float], w0: float, w1: float
) -> list[tuple[float, float]]:
    """Quadrilateral around the segment p0-p1 with half-widths w0 and w1 (horizontal offsets)."""
    return [(p0[0] - w0, p0[1]), (p0[0] + w0, p0[1]), (p1[0] + w1, p1[1]), (p1[0] - w1, p1[1])]


def pole(cv: Canvas, x: float, y_top: float, y_bottom: float, width: float, colour: Colour) -> None:
    if y_bottom > y_top:
        cv.rect((x - width / 2, y_top, x + width / 2, y_bottom), colour)

