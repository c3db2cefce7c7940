"""The four object kinds of the base tasks: pedestrian, car (side view), stop sign and traffic light."""

from __future__ import annotations

import math

import numpy as np

from multitask.data.generators.drawing import Canvas, jitter, mix, pick, uniform
from multitask.data.generators.palette import GLASS, HAIR, HOUSING, LAMP, LAMP_OFF, PANTS, SKIN, Colour


def draw_pedestrian(
    cv: Canvas, rng: np.random.Generator, cx: float, y0: float, h: float, shirt: Colour
) -> None:
    skin = jitter(rng, pick(rng, SKIN), 8)
    pants = jitter(rng, pick(rng, PANTS), 10)
    stride = uniform(rng, 0.0, 0.13) * h
    lean = uniform(rng, -0.03, 0.03) * h
    hip_y = y0 + 0.55 * h
    leg_w = 0.09 * h
    shoe = (30, 28, 26)
    for side in (-1.0, 1.0):
        hip = (cx + side * 0.055 * h, hip_y)
        foot = (cx + side * stride + side * 0.03 * h, y0 + 0.95 * h)
        cv.line([hip, foot], pants, leg_w)
        cv.ellipse(foot[0] + 0.02 * h * side, foot[1] + 0.01 * h, 0.055 * h, 0.035 * h, shoe)
    swing = uniform(rng, 0.0, 0.09) * h
    arm_w = 0.065 * h
    for side in (-1.0, 1.0):
        shoulder = (cx + lean + side * 0.1 * h, y0 + 0.22 * h)
        hand = (cx + side * (0.14 * h) + side * swing * 0.5, y0 + 0.5 * h)
        cv.line([shoulder, hand], shirt, arm_w)
        cv.ellipse(hand[0], hand[1], 0.035 * h, fill=skin)
    cv.rounded((cx + lean - 0.12 * h, y0 + 0.17 * h, cx + lean + 0.12 * h, hip_y + 0.03 * h), 0.05 * h, shirt)
    r = 0.085 * h
    hx, hy = cx + lean, y0 + r + 0.005 * h
    cv.rect((hx - 0.03 * h, hy, hx + 0.03 * h, y0 + 0.19 * h), skin)  # neck
    cv.ellipse(hx, hy, r, r * 1.05, skin)
    if rng.random() < 0.75:
        cv.chord(hx, hy - 0.01 * h, r * 1.02, 180, 360, jitter(rng, pick(rng, HAIR), 8))


_CABINS = (
    ((0.20, 0.45), (0.33, 0.06), (0.66, 0.06), (0.83, 0.45)),  # sedan
    ((0.08, 0.45), (0.12, 0.05), (0.62, 0.05), (0.80, 0.45)),  # hatchback
    ((0.03, 0.45), (0.04, 0.01), (0.74, 0.01), (0.92, 0.45)),  # van
    ((0.10, 0.45), (0.15, 0.03), (0.68, 0.03), (0.85, 0.45)),  # suv
)


def draw_car(
    cv: Canvas, rng: np.random.Generator, x0: float, y0: float, w: float, h: float, body: Colour
) -> None:
    facing = 1.0 if rng.random() < 0.5 else -1.0

    def p(u: float, v: float) -> tuple[float, float]:
        return (x0 + (u if facing > 0 else 1.0 - u) * w, y0 + v * h)

    cabin = pick(rng, _CABINS)
    cv.polygon([p(*q) for q in cabin], body)
    glass = jitter(rng, pick(rng, GLASS), 8)
    cu = sum(q[0] for q in cabin) / 4
    inset = [(cu + (q[0] - cu) * 0.84, q[1] + 0.06 if q[1] < 0.3 else 0.43) for q in cabin]
    cv.polygon([p(*q) for q in inset], glass)
    cv.line([p(cu + 0.02, 0.1), p(cu + 0.02, 0.44)], body, 0.045 * h)  # pillar
    cv.rounded((*p(0.0, 0.42), *p(1.0, 0.84)), 0.1 * h, body)
    cv.line([p(0.02, 0.66), p(0.98, 0.66)], mix(body, (0, 0, 0), 0.35), 0.025 * h)  # trim line
    cv.rect((*p(0.955, 0.5), *p(1.0, 0.6)), (250, 240, 185))  # headlight
    cv.rect((*p(0.0, 0.5), *p(0.035, 0.62)), (205, 25, 25))  # tail light
    rw = 0.19 * h
    for u in (0.2, 0.8):
        cx, cy = p(u, 1.0 - rw / h)
        cv.ellipse(cx, cy, rw * 1.12, fill=(18, 18, 20))
        cv.ellipse(cx, cy, rw, fill=(30, 30, 32))
        cv.ellipse(cx, cy, rw * 0.48, fill=(150, 150, 158))


def _octagon(cx: float, cy: float, r: float, sx: float) -> list[tuple[float, float]]:
    return [
        (cx + r * sx * math.cos(math.radians(22.5 + 45 * k)), cy + r * math.sin(math.radians(22.5 + 45 * k)))
        for k in range(8)
    ]


def draw_stop_sign(cv: Canvas, rng: np.random.Generator, cx: float, cy: float, r: float, sx: float) -> None:
    red = jitter(rng, pick(rng, ((205, 22, 28), (185, 18, 30), (225, 40, 38))), 10)
    white = jitter(rng, (238, 238, 236), 8)
    cv.polygon(_octagon(cx, cy, r, sx), white)
    cv.polygon(_octagon(cx, cy, r * 0.85, sx), red)
    letter_w, gap = 0.22 * r * sx, 0.12 * r * sx
    x = cx - 2 * letter_w - 1.5 * gap
    for k in range(4):  # "STOP" as four white letter-like marks
        cv.rect((x, cy - 0.2 * r, x + letter_w, cy + 0.2 * r), white)
        if k == 2:  # the "O" has a hole
            cv.rect((x + 0.3 * letter_w, cy - 0.08 * r, x + 0.7 * letter_w, cy + 0.08 * r), red)
        x += letter_w + gap


def draw_traffic_light(
    cv: Canvas, rng: np.random.Generator, x0: float, y0: float, w: float, h: float, lit: str
) -> None:
    housing = (220, 180, 30) if rng.random() < 0.08 else jitter(rng, pick(rng, HOUSING), 6)
    cv.rounded((x0, y0, x0 + w, y0 + h), 0.22 * w, housing)
    cx, r = x0 + w / 2, 0.34 * w
    for k, name in enumerate(("red", "amber", "green")):
        cy = y0 + h * (2 * k + 1) / 6
        if name == lit:
            lamp = LAMP[name]
            cv.ellipse(cx, cy, r * 1.22, fill=mix(housing, lamp, 0.55))
            cv.ellipse(cx, cy, r, fill=lamp)
            cv.ellipse(cx - 0.25 * r, cy - 0.25 * r, r * 0.35, fill=mix(lamp, (255, 255, 255), 0.6))
        else:
            cv.ellipse(cx, cy, r, fill=mix(LAMP_OFF[name], housing, 0.3))
