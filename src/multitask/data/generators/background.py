"""The scene behind the objects: sky and ground gradients, a city skyline or hills, a road in perspective or flat."""

from __future__ import annotations

import numpy as np

from multitask.data.generators.drawing import Canvas, clip8, hsv, jitter, mix, pick, uniform, wedge
from multitask.data.generators.palette import ASPHALT, BUILDING, FOLIAGE, GRASS, PAVING


def sky_and_ground(rng: np.random.Generator, size: int, horizon: int) -> np.ndarray:
    kind = rng.random()
    if kind < 0.55:  # clear day
        hue = uniform(rng, 0.53, 0.66)
        top = hsv(hue, uniform(rng, 0.45, 0.85), uniform(rng, 0.65, 0.95))
        bottom = hsv(hue + uniform(rng, -0.04, 0.04), uniform(rng, 0.05, 0.3), uniform(rng, 0.88, 1.0))
    elif kind < 0.8:  # overcast
        g = uniform(rng, 120, 195)
        t = uniform(rng, -8, 12)
        top = (clip8(g), clip8(g + t / 2), clip8(g + t))
        bottom = mix(top, (235, 235, 235), uniform(rng, 0.3, 0.8))
    else:  # dusk
        top = hsv(uniform(rng, 0.6, 0.8), uniform(rng, 0.35, 0.7), uniform(rng, 0.3, 0.6))
        bottom = hsv(uniform(rng, 0.0, 0.12), uniform(rng, 0.45, 0.85), uniform(rng, 0.8, 1.0))
    arr = np.empty((size, size, 3), dtype=np.uint8)
    t = np.linspace(0.0, 1.0, max(horizon, 1), dtype=np.float32)[:, None]
    grad = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    arr[:horizon] = (grad[:horizon, None, :] + 0.5).astype(np.uint8)
    paved = rng.random() < 0.35
    ground = jitter(rng, pick(rng, PAVING if paved else GRASS), 12)
    far = mix(ground, bottom, 0.3)
    t = np.linspace(0.0, 1.0, size - horizon, dtype=np.float32)[:, None]
    grad = np.asarray(far, np.float32) * (1 - t) + np.asarray(ground, np.float32) * t
    arr[horizon:] = (grad[:, None, :] + 0.5).astype(np.uint8)
    return arr


def draw_city(cv: Canvas, rng: np.random.Generator, horizon: float) -> None:
    s = cv.size
    x = -uniform(rng, 0.0, 0.1) * s
    lit = rng.random() < 0.3
    while x < s:
        bw = uniform(rng, 0.08, 0.26) * s
        bh = uniform(rng, 0.15, 0.95) * horizon
        wall = jitter(rng, pick(rng, BUILDING), 14)
        top = horizon - bh
        cv.rect((x, top, x + bw, horizon + 1), wall)
        window = mix(wall, (255, 225, 130) if lit else (40, 45, 60), uniform(rng, 0.45, 0.8))
        cols, rows = min(4, int(bw / (0.05 * s))), min(6, int(bh / (0.06 * s)))
        if cols >= 1 and rows >= 1:
            cw, rh = bw / cols, bh / rows
            for i in range(cols):
                for j in range(rows - 1):
                    wx, wy = x + (i + 0.3) * cw, top + (j + 0.35) * rh
                    cv.rect((wx, wy, wx + 0.4 * cw, wy + 0.4 * rh), window)
        x += bw + uniform(rng, -0.02, 0.06) * s


def draw_country(cv: Canvas, rng: np.random.Generator, horizon: float) -> None:
    s = cv.size
    colour = jitter(rng, pick(rng, ((70, 110, 70), (90, 120, 80), (110, 110, 120), (80, 95, 110))), 12)
    pts = [(0.0, horizon + 1)]
    n = int(rng.integers(3, 7))
    for i in range(n + 1):
        pts.append((s * i / n, horizon - uniform(rng, 0.0, 0.18) * s))
    pts.append((float(s), horizon + 1))
    cv.polygon(pts, colour)
    for _ in range(int(rng.integers(0, 6))):
        r = uniform(rng, 0.02, 0.06) * s
        cv.ellipse(uniform(rng, 0, s), horizon - r * 0.6, r, r * 1.2, jitter(rng, pick(rng, FOLIAGE), 10))


def draw_road_perspective(cv: Canvas, rng: np.random.Generator, horizon: float) -> None:
    s = cv.size
    vx = uniform(rng, 0.3, 0.7) * s
    half_top = uniform(rng, 0.01, 0.04) * s
    bl, br = vx - uniform(rng, 0.55, 1.1) * s, vx + uniform(rng, 0.55, 1.1) * s
    asphalt = jitter(rng, pick(rng, ASPHALT), 8)
    if rng.random() < 0.6:  # kerb / sidewalk strips
        kerb = jitter(rng, pick(rng, PAVING), 8)
        cv.polygon(
            [
                (vx - half_top * 1.5, horizon),
                (vx + half_top * 1.5, horizon),
                (br + 0.25 * s, s),
                (bl - 0.25 * s, s),
            ],
            kerb,
        )
    cv.polygon([(vx - half_top, horizon), (vx + half_top, horizon), (br, s), (bl, s)], asphalt)
    paint = (240, 240, 235)
    for side in (-1.0, 1.0):  # edge lines
        top = (vx + side * half_top * 0.85, horizon)
        bottom = ((bl if side < 0 else br) - side * 0.05 * (br - bl), float(s))
        cv.polygon(wedge(top, bottom, 0.001 * s, 0.012 * s), paint)
    centre_paint = (240, 200, 40) if rng.random() < 0.4 else paint
    lanes = [0.5] if rng.random() < 0.6 else [1 / 3, 2 / 3]
    for frac in lanes:
        top_x = vx - half_top + 2 * half_top * frac
        bottom_x = bl + (br - bl) * frac
        a = uniform(rng, 0.02, 0.08)
        while a < 1.0:
            b = min(1.0, a + 0.04 + 0.3 * a)
            ya, yb = horizon + (s - horizon) * a, horizon + (s - horizon) * b
            xa, xb = top_x + (bottom_x - top_x) * a, top_x + (bottom_x - top_x) * b
            cv.polygon(
                wedge((xa, ya), (xb, yb), 0.002 * s + 0.012 * s * a, 0.002 * s + 0.012 * s * b), centre_paint
            )
            a = b + (b - a) * 0.9


def draw_road_flat(cv: Canvas, rng: np.random.Generator, horizon: float) -> None:
    s = cv.size
    y0 = horizon + uniform(rng, 0.04, 0.2) * s
    y1 = min(float(s), y0 + uniform(rng, 0.25, 0.45) * s)
    walk = jitter(rng, pick(rng, PAVING), 10)
    cv.rect((0, horizon, s, y0), walk)
    cv.rect((0, y0 - 0.015 * s, s, y0 + 0.005 * s), mix(walk, (60, 60, 60), 0.4))  # kerb
    cv.rect((0, y0, s, y1), jitter(rng, pick(rng, ASPHALT), 8))
    ym = (y0 + y1) / 2
    paint = (240, 200, 40) if rng.random() < 0.4 else (240, 240, 235)
    dash, gap = uniform(rng, 0.08, 0.16) * s, uniform(rng, 0.06, 0.12) * s
    x = -uniform(rng, 0.0, dash + gap)
    while x < s:
        cv.rect((x, ym - 0.008 * s, x + dash, ym + 0.008 * s), paint)
        x += dash + gap
    if y1 < s:
        cv.rect((0, y1, s, y1 + 0.01 * s), mix(walk, (60, 60, 60), 0.3))
