"""Distractors and occluders: other road signs, bushes, trees, lamp posts, utility boxes, foliage."""

from __future__ import annotations

import numpy as np

from multitask.data.generators.drawing import Canvas, jitter, mix, pick, pole, uniform
from multitask.data.generators.palette import FOLIAGE


def draw_other_sign(cv: Canvas, rng: np.random.Generator, cx: float, cy: float, r: float) -> None:
    kind = int(rng.integers(5))
    white, red, black = (236, 236, 234), jitter(rng, (200, 25, 30), 10), (25, 25, 25)
    if kind == 0:  # blue parking / info sign
        cv.rect((cx - r, cy - r, cx + r, cy + r), white)
        cv.rect((cx - 0.88 * r, cy - 0.88 * r, cx + 0.88 * r, cy + 0.88 * r), jitter(rng, (30, 80, 190), 12))
        cv.rect((cx - 0.3 * r, cy - 0.55 * r, cx + 0.1 * r, cy + 0.55 * r), white)
    elif kind == 1:  # yellow diamond warning
        cv.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], black)
        cv.polygon(
            [(cx, cy - 0.86 * r), (cx + 0.86 * r, cy), (cx, cy + 0.86 * r), (cx - 0.86 * r, cy)],
            (240, 200, 30),
        )
        cv.rect((cx - 0.08 * r, cy - 0.4 * r, cx + 0.08 * r, cy + 0.4 * r), black)
    elif kind == 2:  # round speed limit: red ring, white disc, black digits
        cv.ellipse(cx, cy, r, fill=red)
        cv.ellipse(cx, cy, 0.78 * r, fill=white)
        cv.rect((cx - 0.42 * r, cy - 0.3 * r, cx - 0.06 * r, cy + 0.3 * r), black)
        cv.rect((cx + 0.06 * r, cy - 0.3 * r, cx + 0.42 * r, cy + 0.3 * r), black)
    elif kind == 3:  # inverted yield triangle
        cv.polygon([(cx - r, cy - 0.8 * r), (cx + r, cy - 0.8 * r), (cx, cy + r)], red)
        cv.polygon(
            [(cx - 0.62 * r, cy - 0.58 * r), (cx + 0.62 * r, cy - 0.58 * r), (cx, cy + 0.55 * r)], white
        )
    else:  # blue round mandatory sign with a white arrow
        cv.ellipse(cx, cy, r, fill=jitter(rng, (30, 80, 190), 12))
        cv.line([(cx, cy + 0.6 * r), (cx, cy - 0.5 * r)], white, 0.2 * r)
        cv.polygon([(cx - 0.35 * r, cy - 0.2 * r), (cx + 0.35 * r, cy - 0.2 * r), (cx, cy - 0.7 * r)], white)


def draw_bush(cv: Canvas, rng: np.random.Generator, cx: float, base: float, r: float) -> None:
    green = pick(rng, FOLIAGE)
    for _ in range(int(rng.integers(3, 6))):
        rr = r * uniform(rng, 0.5, 0.9)
        cv.ellipse(
            cx + uniform(rng, -0.8, 0.8) * r, base - rr * uniform(rng, 0.5, 1.1), rr, rr * 0.85, jitter(rng, green, 16)
        )


def draw_tree(cv: Canvas, rng: np.random.Generator, cx: float, base: float, s: float) -> None:
    height = uniform(rng, 0.2, 0.55) * s
    top = max(0.1 * s, base - height)
    pole(cv, cx, top, base, uniform(rng, 0.02, 0.045) * s, jitter(rng, (95, 65, 40), 12))
    r = uniform(rng, 0.08, 0.17) * s
    green = pick(rng, FOLIAGE)
    for _ in range(int(rng.integers(3, 6))):
        rr = r * uniform(rng, 0.55, 0.9)
        cv.ellipse(
            cx + uniform(rng, -0.7, 0.7) * r, top + uniform(rng, -0.5, 0.4) * r, rr, rr * 0.9, jitter(rng, green, 16)
        )


def draw_lamp_post(cv: Canvas, rng: np.random.Generator, x: float, base: float, s: float) -> None:
    top = uniform(rng, 0.0, 0.3) * s
    grey = jitter(rng, (110, 110, 115), 15)
    w = uniform(rng, 0.012, 0.03) * s
    pole(cv, x, top, base, w, grey)
    arm = (0.08 * s) * (1 if rng.random() < 0.5 else -1)
    cv.line([(x, top + w), (x + arm, top + w)], grey, w * 0.8)
    cv.ellipse(x + arm, top + 2 * w, 0.025 * s, 0.012 * s, (225, 225, 210))


def draw_box(cv: Canvas, rng: np.random.Generator, cx: float, base: float, s: float) -> None:
    w, h = uniform(rng, 0.05, 0.11) * s, uniform(rng, 0.08, 0.2) * s
    colour = jitter(rng, pick(rng, ((60, 60, 62), (70, 95, 75), (120, 120, 118), (35, 35, 38))), 8)
    cv.rect((cx - w / 2, base - h, cx + w / 2, base), colour)
    cv.rect((cx - w / 2, base - h, cx + w / 2, base - h + 0.1 * h), mix(colour, (0, 0, 0), 0.3))


def draw_foliage(cv: Canvas, rng: np.random.Generator, x: float, y: float, r: float) -> None:
    green = pick(rng, FOLIAGE)
    for _ in range(3):
        rr = r * uniform(rng, 0.6, 1.0)
        cv.ellipse(x + uniform(rng, -0.6, 0.6) * r, y + uniform(rng, -0.6, 0.6) * r, rr, rr * 0.85,
                   jitter(rng, green, 16))
