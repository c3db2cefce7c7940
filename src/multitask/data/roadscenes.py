"""Built-in synthetic road scenes: a procedural multi-label image generator (no downloads).

Every scene is drawn with PIL at a higher resolution and downscaled with LANCZOS: a sky gradient of varied
hue (clear, overcast, dusk), a city skyline or hills, a road in perspective or seen from the side with lane
markings, grass or pavement, then objects and distractors in depth order (far first), so nearer things hide
farther ones, and last a global brightness/contrast/colour-cast change, a smooth illumination field and pixel
noise.

Base tasks (:data:`TASKS`): ``pedestrian``, ``car``, ``stop_sign``, ``traffic_light``. Each kind is present
with probability ``presence`` (default 0.4, independently), 1 to ``max_instances`` times, at a random place
and size (0.15 to 0.5 of the image height). Shapes, not colours alone, identify the kinds:

* pedestrian: head circle, torso, arms and two legs; shirt in one of six colour families;
* car: side view, body + cabin with windows + two dark wheels; body in one of six colour families;
* stop sign: red octagon with a white rim and a white text-like bar, usually on a pole;
* traffic light: dark vertical housing with three round lamps, one of them lit red, amber or green.

Distractors share colours with the objects (red cars and shirts, red-rimmed round and triangular signs,
green bushes, dark utility boxes, lamp posts, trees) and occlude them.

Visibility rule: a drawn object counts (for its base task and every attribute task) only when at least
``min_visible`` (default 0.4) of its pixels remain visible in the final scene, measured on an object-id map
drawn alongside the picture. An object hidden more than that by occluders or other objects is labelled as
absent. Objects always lie fully inside the frame. Poles and mounting arms are not part of an object.

Extra tasks (:func:`extra_task_names`) are attributes of the same objects, so they share low-level features
with the base tasks: colour family, left/right half, top/bottom half (of the object's box centre), large/small
(box height against the middle of the kind's size range) and "two or more", then pairs of those. An attribute
task is 1 when at least one counted object of its kind has every attribute in the name (``two_cars``: at
least two counted cars), so an attribute task that is 1 implies its base task is 1.

Texture tasks (``texture_tasks=K``) are a second family whose overlap in features is a knob. Over the
same backgrounds, each scene holds discs of sinusoidal gratings (period 3.5 to 4.5 output pixels, random
tint, phase and contrast) in K directions (:func:`texture_directions`), each present with probability
``texture_presence``, and 0 to 2 distractor discs in half-way directions. Task k is a linear threshold
function of which directions are visible (:func:`texture_weights`): with ``texture_relatedness`` r = 0,
"a disc of direction k is visible", so every task needs its own orientation detector and no other task
needs it; with r = 1, a weighted vote over all K directions, so every task needs the same K detectors while
the labels stay nearly uncorrelated (|phi| ≈ 0.1). The images do not depend on r (the same seed draws the same
pictures), only the labels do.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     path = generate_road_scenes(d, n_images=4, image_size=16, extra_tasks=2)
...     path.read_text().splitlines()[0]
'image,pedestrian,car,stop_sign,traffic_light,pedestrian_left,car_left,split'
"""

from __future__ import annotations

import colorsys
import csv
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image, ImageDraw

from multitask.errors import ConfigError

if TYPE_CHECKING:
    from rich.progress import Progress

T = TypeVar("T")

__all__ = [
    "TASKS",
    "SIZE_RANGES",
    "COLOURS",
    "SceneObject",
    "extra_task_names",
    "max_extra_tasks",
    "render_scene",
    "render_scene_objects",
    "scene_labels",
    "generate_road_scenes",
    "texture_directions",
    "texture_labels",
    "texture_task_names",
    "texture_weights",
]

TASKS: tuple[str, ...] = ("pedestrian", "car", "stop_sign", "traffic_light")

#: Height of an object's box as a fraction of the image height: (min, max). "large" means >= the middle.
SIZE_RANGES: dict[str, tuple[float, float]] = {
    "pedestrian": (0.22, 0.5),
    "car": (0.15, 0.36),
    "stop_sign": (0.15, 0.38),
    "traffic_light": (0.24, 0.5),
}

_PLURAL = {
    "pedestrian": "pedestrians",
    "car": "cars",
    "stop_sign": "stop_signs",
    "traffic_light": "traffic_lights",
}

_BODY_PALETTE: dict[str, tuple[tuple[int, int, int], ...]] = {
    "red": ((200, 28, 30), (168, 18, 28), (225, 55, 45)),
    "blue": ((35, 70, 178), (25, 45, 125), (60, 115, 210)),
    "green": ((35, 128, 55), (25, 90, 45), (85, 155, 60)),
    "yellow": ((236, 196, 35), (245, 215, 70), (215, 172, 22)),
    "white": ((236, 236, 236), (222, 224, 228), (246, 246, 240)),
    "black": ((28, 28, 30), (44, 44, 50), (20, 22, 28)),
}
_LAMP = {"red": (255, 45, 35), "amber": (255, 172, 20), "green": (50, 235, 110)}
_LAMP_OFF = {"red": (70, 32, 30), "amber": (72, 60, 28), "green": (28, 60, 42)}

#: Colour families per kind (the attribute values of the colour tasks).
COLOURS: dict[str, tuple[str, ...]] = {
    "pedestrian": tuple(_BODY_PALETTE),
    "car": tuple(_BODY_PALETTE),
    "stop_sign": (),
    "traffic_light": tuple(_LAMP),
}

_SKIN = ((241, 194, 160), (224, 172, 130), (198, 134, 90), (141, 85, 54), (92, 58, 38))
_HAIR = ((30, 22, 15), (70, 45, 25), (150, 110, 60), (200, 170, 110), (120, 120, 120))
_PANTS = ((42, 55, 95), (30, 30, 34), (92, 92, 98), (100, 72, 45), (60, 70, 60))
_GLASS = ((150, 180, 200), (110, 135, 155), (70, 85, 100), (170, 190, 205))
_HOUSING = ((30, 30, 32), (45, 45, 42), (22, 42, 30), (18, 18, 20))
_BUILDING = ((150, 150, 155), (185, 170, 145), (150, 80, 60), (110, 115, 130), (200, 195, 185), (95, 90, 88))
_GRASS = ((80, 140, 60), (110, 150, 70), (140, 145, 80), (95, 120, 55), (150, 135, 95))
_PAVING = ((160, 158, 150), (185, 180, 170), (140, 138, 135))
_ASPHALT = ((78, 78, 82), (95, 95, 98), (62, 62, 66), (110, 108, 105))
_FOLIAGE = ((40, 100, 40), (60, 125, 45), (30, 80, 35), (85, 130, 50))

Colour = tuple[int, int, int]


# ---------------------------------------------------------------------------------------- objects


@dataclass(frozen=True)
class SceneObject:
    """One object drawn in a scene, in image fractions (0..1), with its visible fraction.

    ``bbox`` is ``(x0, y0, x1, y1)``; for signs and traffic lights it is the head/housing (not the pole).
    ``colour`` is the colour family (shirt, car body, lit lamp) or ``None`` for stop signs.
    ``visible`` is the fraction of the object's pixels not hidden by things drawn in front of it.
    """

    kind: str
    bbox: tuple[float, float, float, float]
    colour: str | None
    visible: float

    @property
    def hpos(self) -> str:
        return "left" if (self.bbox[0] + self.bbox[2]) / 2 < 0.5 else "right"

    @property
    def vpos(self) -> str:
        return "top" if (self.bbox[1] + self.bbox[3]) / 2 < 0.5 else "bottom"

    @property
    def size(self) -> str:
        lo, hi = SIZE_RANGES[self.kind]
        return "large" if self.bbox[3] - self.bbox[1] >= (lo + hi) / 2 else "small"


@dataclass(frozen=True)
class _AttrTask:
    name: str
    kind: str
    colour: str | None = None
    hpos: str | None = None
    vpos: str | None = None
    size: str | None = None
    min_count: int = 1

    def label(self, objects: Sequence[SceneObject]) -> int:
        n = 0
        for o in objects:
            if (
                o.kind == self.kind
                and (self.colour is None or o.colour == self.colour)
                and (self.hpos is None or o.hpos == self.hpos)
                and (self.vpos is None or o.vpos == self.vpos)
                and (self.size is None or o.size == self.size)
            ):
                n += 1
        return int(n >= self.min_count)


def _interleave(lists: Sequence[Sequence[_AttrTask]]) -> list[_AttrTask]:
    out: list[_AttrTask] = []
    for i in range(max((len(x) for x in lists), default=0)):
        out.extend(x[i] for x in lists if i < len(x))
    return out


def _build_candidates() -> tuple[_AttrTask, ...]:
    """The fixed, ordered list of attribute tasks: single attributes first, then pairs; kinds round-robin."""
    groups: list[list[_AttrTask]] = []
    singles = []
    for k in TASKS:
        row = [_AttrTask(f"{k}_{h}", k, hpos=h) for h in ("left", "right")]
        row += [_AttrTask(f"{k}_{s}", k, size=s) for s in ("large", "small")]
        row += [_AttrTask(f"{k}_{c}", k, colour=c) for c in COLOURS[k]]
        row += [_AttrTask(f"two_{_PLURAL[k]}", k, min_count=2)]
        row += [_AttrTask(f"{k}_{v}", k, vpos=v) for v in ("top", "bottom")]
        singles.append(row)
    groups.append(_interleave(singles))
    pairs: list[Callable[[str], list[_AttrTask]]] = [
        lambda k: [
            _AttrTask(f"{k}_{c}_{h}", k, colour=c, hpos=h) for c in COLOURS[k] for h in ("left", "right")
        ],
        lambda k: [
            _AttrTask(f"{k}_{c}_{s}", k, colour=c, size=s) for c in COLOURS[k] for s in ("large", "small")
        ],
        lambda k: [
            _AttrTask(f"{k}_{h}_{s}", k, hpos=h, size=s)
            for h in ("left", "right")
            for s in ("large", "small")
        ],
        lambda k: [
            _AttrTask(f"{k}_{c}_{v}", k, colour=c, vpos=v) for c in COLOURS[k] for v in ("top", "bottom")
        ],
        lambda k: [
            _AttrTask(f"{k}_{v}_{h}", k, vpos=v, hpos=h) for v in ("top", "bottom") for h in ("left", "right")
        ],
        lambda k: [
            _AttrTask(f"{k}_{v}_{s}", k, vpos=v, size=s)
            for v in ("top", "bottom")
            for s in ("large", "small")
        ],
    ]
    for make in pairs:
        groups.append(_interleave([make(k) for k in TASKS]))
    return tuple(t for g in groups for t in g)


_CANDIDATES = _build_candidates()


def max_extra_tasks() -> int:
    """How many extra attribute tasks exist (the largest valid ``extra_tasks``).

    >>> max_extra_tasks()
    181
    """
    return len(_CANDIDATES)


def _extra_specs(n: int) -> tuple[_AttrTask, ...]:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ConfigError(f"extra_tasks must be a non-negative integer, got {n!r}")
    if n > len(_CANDIDATES):
        raise ConfigError(
            f"extra_tasks={n} is too many: at most {len(_CANDIDATES)} extra tasks are available"
        )
    return _CANDIDATES[: int(n)]


def extra_task_names(n: int) -> list[str]:
    """Names of the first ``n`` extra attribute tasks, in their fixed order.

    Raises ``ValueError`` (a :class:`~multitask.errors.ConfigError`) when ``n`` exceeds
    :func:`max_extra_tasks`.

    >>> extra_task_names(6)
    ['pedestrian_left', 'car_left', 'stop_sign_left', 'traffic_light_left', 'pedestrian_right', 'car_right']
    """
    return [t.name for t in _extra_specs(n)]


def scene_labels(
    objects: Sequence[SceneObject],
    extra_tasks: int = 0,
    min_visible: float = 0.4,
    texture_tasks: int = 0,
    texture_relatedness: float = 0.0,
) -> dict[str, int]:
    """Labels {task: 0/1} for base + extra tasks (then ``texture_tasks`` texture tasks, see
    :func:`texture_weights`) from drawn objects; objects less visible than ``min_visible`` do not count.

    >>> car = SceneObject("car", (0.1, 0.5, 0.6, 0.75), "red", visible=0.9)
    >>> scene_labels([car], extra_tasks=4)
    {'pedestrian': 0, 'car': 1, 'stop_sign': 0, 'traffic_light': 0, 'pedestrian_left': 0, 'car_left': 1, \
'stop_sign_left': 0, 'traffic_light_left': 0}
    """
    specs = _extra_specs(extra_tasks)
    counted = [o for o in objects if o.visible >= min_visible]
    kinds = {o.kind for o in counted}
    labels = {k: int(k in kinds) for k in TASKS}
    for t in specs:
        labels[t.name] = t.label(counted)
    if texture_tasks:
        present = [f"grating_{i}" in kinds for i in range(int(texture_tasks))]
        values = texture_labels(present, texture_relatedness)
        labels.update(zip(texture_task_names(texture_tasks), values.tolist(), strict=True))
    return labels


# ---------------------------------------------------------------------------------------- texture tasks

TEXTURE_MAX_TASKS = 24
"""At most this many texture tasks (their grating directions are π / K apart)."""

_TEXTURE_OFFSET = math.pi / 8  # directions keep clear of the pixel grid's 0° and 90°
_TEXTURE_PERIOD = (3.5, 4.5)  # grating period, in output pixels
_TEXTURE_RADIUS = (0.13, 0.18)  # disc radius, as a fraction of the image side
_TEXTURE_JITTER = 0.1  # direction jitter of every disc: ± this × π / K
_TEXTURE_OWN = 1e-3  # a task's own direction breaks ties


def _check_textures(n: int, relatedness: float, presence: float) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 0 <= n <= TEXTURE_MAX_TASKS:
        raise ConfigError(f"texture_tasks must be an integer from 0 to {TEXTURE_MAX_TASKS}, got {n!r}")
    if not 0.0 <= float(relatedness) <= 1.0:
        raise ConfigError(f"texture_relatedness must be in [0, 1], got {relatedness}")
    if not 0.0 <= float(presence) <= 1.0:
        raise ConfigError(f"texture_presence must be in [0, 1], got {presence}")


def texture_task_names(n: int) -> list[str]:
    """Names of ``n`` texture tasks.

    >>> texture_task_names(3)
    ['texture_0', 'texture_1', 'texture_2']
    """
    _check_textures(n, 0.0, 0.0)
    return [f"texture_{k}" for k in range(int(n))]


def texture_directions(n: int) -> np.ndarray:
    """The K = ``n`` grating directions (radians) of the texture discs: π/8 + i π/K. (Distractor discs take the
    half-way directions π/8 + (i + ½) π/K.)

    >>> [round(math.degrees(a), 1) for a in texture_directions(4)]
    [22.5, 67.5, 112.5, 157.5]
    """
    _check_textures(n, 0.0, 0.0)
    return _TEXTURE_OFFSET + np.arange(int(n)) * math.pi / max(int(n), 1)


def _vote_pattern(n: int) -> np.ndarray:
    """(n, n): row k is the cyclic shift by k of one fixed zero-sum unit vector with a flat spectrum (every
    non-zero frequency has the same magnitude, phases from a fixed seed), so any two rows have the cosine
    −1/(n − 1): as close to orthogonal as n zero-sum vectors in n dimensions can be."""
    if n == 1:
        return np.ones((1, 1))
    rng = np.random.default_rng(2024)
    spectrum = np.zeros(n, dtype=complex)
    for f in range(1, n // 2 + 1):
        if 2 * f == n:
            spectrum[f] = 1.0
        else:
            spectrum[f] = np.exp(2j * math.pi * rng.random())
            spectrum[n - f] = np.conj(spectrum[f])
    v = np.fft.ifft(spectrum).real
    v /= np.linalg.norm(v)
    return np.stack([np.roll(v, k) for k in range(n)])


def texture_weights(n: int, relatedness: float = 0.0) -> np.ndarray:
    """The (K, K) weights of the texture tasks: task k is 1 when ``weights[k] · s > 0``, where s_i = +1 if a disc
    of direction i is visible and −1 if not.

    ``weights[k] = (1 − r) e_k + r v_k + 0.001 e_k`` with r = ``relatedness`` and v_k the cyclic shift by k of
    one fixed zero-sum unit vector with a flat spectrum (all K entries non-zero; any two v's have the cosine
    −1/(K − 1)):

    * r = 0: task k is "a disc of direction k is visible". Each task needs one orientation detector, and no
      other task needs it: the tasks share no deciding feature.
    * r = 1: every task is a weighted vote over all K directions ("more of these directions than of those"):
      every task needs all K orientation detectors, the same for all tasks, while the labels stay nearly
      uncorrelated (zero-sum votes, weight vectors at cosine −1/(K − 1)), as the object tasks of road scenes
      are independent while sharing edges and colours.
    * in between: a task depends mostly on its own direction, and on all of them more and more as r grows.

    Every task is a linear threshold function of which directions are present, so a network with global
    pooling and one linear head per task can represent each of them at every r. The tiny own-direction term
    breaks ties.

    >>> texture_weights(3, 0.0).round(3).tolist()
    [[1.001, 0.0, 0.0], [0.0, 1.001, 0.0], [0.0, 0.0, 1.001]]
    >>> w = texture_weights(8, 1.0)
    >>> bool(np.all(np.abs(w) > 0.01)), round(float(w[0] @ w[1]), 3), round(float(w[0].sum()), 3)
    (True, -0.143, 0.001)
    """
    _check_textures(n, relatedness, 0.0)
    n, r = int(n), float(relatedness)
    if n == 0:
        return np.zeros((0, 0))
    return (1 - r + _TEXTURE_OWN) * np.eye(n) + r * _vote_pattern(n)


def texture_labels(present: Sequence[bool] | np.ndarray, relatedness: float = 0.0) -> np.ndarray:
    """Labels (0/1, one per texture task) from which of the K directions have a visible disc.

    >>> texture_labels([True, False, True], 0.0).tolist()
    [1, 0, 1]
    """
    s = np.where(np.asarray(present, dtype=bool), 1.0, -1.0)
    return (texture_weights(len(s), relatedness) @ s > 0).astype(int)


def _grating_disc(
    radius: float, period: float, theta: float, phase: float, light: Colour, dark: Colour, contrast: float
) -> tuple[Image.Image, Image.Image]:
    """An RGB square holding a disc of a sinusoidal grating, and the disc's mask."""
    side = max(2, int(math.ceil(2 * radius)))
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) - (side - 1) / 2
    wave = 0.5 + 0.5 * contrast * np.sin(2 * math.pi * (xx * math.cos(theta) + yy * math.sin(theta)) / period + phase)
    lo, hi = np.asarray(dark, np.float32), np.asarray(light, np.float32)
    rgb = lo + (hi - lo) * wave[..., None]
    mask = ((xx * xx + yy * yy) <= radius * radius).astype(np.uint8) * 255
    return Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "RGB"), Image.fromarray(mask, "L")


def _texture_discs(
    rng: np.random.Generator, s: int, image_size: int, n: int, presence: float
) -> list[tuple[int | None, tuple[int, int, int, int], Image.Image, Image.Image]]:
    """The discs of one scene, in drawing order: (direction index, or None for a distractor; box; image; mask).

    Every random number is drawn whatever ``presence`` is, so the same stream gives the same discs in the same
    places (and the relatedness, which only changes the labels, changes nothing here).
    """
    step = math.pi / n
    scale = s / image_size
    draws = []
    n_distractors = int(rng.integers(0, 3))
    for _ in range(n + n_distractors):
        r = _u(rng, *_TEXTURE_RADIUS) * s
        draws.append({
            "present": float(rng.random()), "r": r, "cx": _u(rng, r, s - r), "cy": _u(rng, r, s - r),
            "period": _u(rng, *_TEXTURE_PERIOD) * scale, "phase": _u(rng, 0, 2 * math.pi),
            "jitter": _u(rng, -1, 1) * _TEXTURE_JITTER * step, "hue": float(rng.random()),
            "contrast": _u(rng, 0.6, 1.0), "sat": _u(rng, 0.4, 0.9), "bright": _u(rng, 0.75, 1.0),
            "dark": _u(rng, 0.1, 0.3), "slot": int(rng.integers(n)),
        })
    out = []
    for i in rng.permutation(len(draws)):
        d = draws[i]
        if i < n:
            if d["present"] >= presence:
                continue
            direction: int | None = int(i)
            theta = _TEXTURE_OFFSET + i * step + d["jitter"]
        else:  # a distractor: half-way between two of the K directions
            direction = None
            theta = _TEXTURE_OFFSET + (d["slot"] + 0.5) * step + d["jitter"]
        light, dark = _hsv(d["hue"], d["sat"], d["bright"]), _hsv(d["hue"], d["sat"], d["dark"])
        image, mask = _grating_disc(d["r"], d["period"], theta, d["phase"], light, dark, d["contrast"])
        x0, y0 = int(round(d["cx"] - d["r"])), int(round(d["cy"] - d["r"]))
        out.append((direction, (x0, y0, x0 + image.size[0], y0 + image.size[1]), image, mask))
    return out


# ---------------------------------------------------------------------------------------- drawing helpers


def _u(rng: np.random.Generator, a: float, b: float) -> float:
    return a + (b - a) * float(rng.random())


def _pick(rng: np.random.Generator, seq: Sequence[T]) -> T:
    return seq[int(rng.integers(len(seq)))]


def _clip8(x: float) -> int:
    return 0 if x < 0 else 255 if x > 255 else int(x + 0.5)


def _jitter(rng: np.random.Generator, c: Colour, amount: int = 12) -> Colour:
    d = rng.integers(-amount, amount + 1, size=3)
    return (_clip8(c[0] + d[0]), _clip8(c[1] + d[1]), _clip8(c[2] + d[2]))


def _mix(a: Colour, b: Colour, t: float) -> Colour:
    return (
        _clip8(a[0] + (b[0] - a[0]) * t),
        _clip8(a[1] + (b[1] - a[1]) * t),
        _clip8(a[2] + (b[2] - a[2]) * t),
    )


def _hsv(h: float, s: float, v: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (_clip8(r * 255), _clip8(g * 255), _clip8(b * 255))


class _Canvas:
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


def _wedge(
    p0: tuple[float, float], p1: tuple[float, float], w0: float, w1: float
) -> list[tuple[float, float]]:
    """Quadrilateral around the segment p0-p1 with half-widths w0 and w1 (horizontal offsets)."""
    return [(p0[0] - w0, p0[1]), (p0[0] + w0, p0[1]), (p1[0] + w1, p1[1]), (p1[0] - w1, p1[1])]


# ---------------------------------------------------------------------------------------- background


def _sky_and_ground(rng: np.random.Generator, size: int, horizon: int) -> np.ndarray:
    kind = rng.random()
    if kind < 0.55:  # clear day
        hue = _u(rng, 0.53, 0.66)
        top = _hsv(hue, _u(rng, 0.45, 0.85), _u(rng, 0.65, 0.95))
        bottom = _hsv(hue + _u(rng, -0.04, 0.04), _u(rng, 0.05, 0.3), _u(rng, 0.88, 1.0))
    elif kind < 0.8:  # overcast
        g = _u(rng, 120, 195)
        t = _u(rng, -8, 12)
        top = (_clip8(g), _clip8(g + t / 2), _clip8(g + t))
        bottom = _mix(top, (235, 235, 235), _u(rng, 0.3, 0.8))
    else:  # dusk
        top = _hsv(_u(rng, 0.6, 0.8), _u(rng, 0.35, 0.7), _u(rng, 0.3, 0.6))
        bottom = _hsv(_u(rng, 0.0, 0.12), _u(rng, 0.45, 0.85), _u(rng, 0.8, 1.0))
    arr = np.empty((size, size, 3), dtype=np.uint8)
    t = np.linspace(0.0, 1.0, max(horizon, 1), dtype=np.float32)[:, None]
    grad = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    arr[:horizon] = (grad[:horizon, None, :] + 0.5).astype(np.uint8)
    paved = rng.random() < 0.35
    ground = _jitter(rng, _pick(rng, _PAVING if paved else _GRASS), 12)
    far = _mix(ground, bottom, 0.3)
    t = np.linspace(0.0, 1.0, size - horizon, dtype=np.float32)[:, None]
    grad = np.asarray(far, np.float32) * (1 - t) + np.asarray(ground, np.float32) * t
    arr[horizon:] = (grad[:, None, :] + 0.5).astype(np.uint8)
    return arr


def _draw_city(cv: _Canvas, rng: np.random.Generator, horizon: float) -> None:
    s = cv.size
    x = -_u(rng, 0.0, 0.1) * s
    lit = rng.random() < 0.3
    while x < s:
        bw = _u(rng, 0.08, 0.26) * s
        bh = _u(rng, 0.15, 0.95) * horizon
        wall = _jitter(rng, _pick(rng, _BUILDING), 14)
        top = horizon - bh
        cv.rect((x, top, x + bw, horizon + 1), wall)
        window = _mix(wall, (255, 225, 130) if lit else (40, 45, 60), _u(rng, 0.45, 0.8))
        cols, rows = min(4, int(bw / (0.05 * s))), min(6, int(bh / (0.06 * s)))
        if cols >= 1 and rows >= 1:
            cw, rh = bw / cols, bh / rows
            for i in range(cols):
                for j in range(rows - 1):
                    wx, wy = x + (i + 0.3) * cw, top + (j + 0.35) * rh
                    cv.rect((wx, wy, wx + 0.4 * cw, wy + 0.4 * rh), window)
        x += bw + _u(rng, -0.02, 0.06) * s


def _draw_country(cv: _Canvas, rng: np.random.Generator, horizon: float) -> None:
    s = cv.size
    colour = _jitter(rng, _pick(rng, ((70, 110, 70), (90, 120, 80), (110, 110, 120), (80, 95, 110))), 12)
    pts = [(0.0, horizon + 1)]
    n = int(rng.integers(3, 7))
    for i in range(n + 1):
        pts.append((s * i / n, horizon - _u(rng, 0.0, 0.18) * s))
    pts.append((float(s), horizon + 1))
    cv.polygon(pts, colour)
    for _ in range(int(rng.integers(0, 6))):
        r = _u(rng, 0.02, 0.06) * s
        cv.ellipse(_u(rng, 0, s), horizon - r * 0.6, r, r * 1.2, _jitter(rng, _pick(rng, _FOLIAGE), 10))


def _draw_road_perspective(cv: _Canvas, rng: np.random.Generator, horizon: float) -> None:
    s = cv.size
    vx = _u(rng, 0.3, 0.7) * s
    half_top = _u(rng, 0.01, 0.04) * s
    bl, br = vx - _u(rng, 0.55, 1.1) * s, vx + _u(rng, 0.55, 1.1) * s
    asphalt = _jitter(rng, _pick(rng, _ASPHALT), 8)
    if rng.random() < 0.6:  # kerb / sidewalk strips
        kerb = _jitter(rng, _pick(rng, _PAVING), 8)
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
        cv.polygon(_wedge(top, bottom, 0.001 * s, 0.012 * s), paint)
    centre_paint = (240, 200, 40) if rng.random() < 0.4 else paint
    lanes = [0.5] if rng.random() < 0.6 else [1 / 3, 2 / 3]
    for frac in lanes:
        top_x = vx - half_top + 2 * half_top * frac
        bottom_x = bl + (br - bl) * frac
        a = _u(rng, 0.02, 0.08)
        while a < 1.0:
            b = min(1.0, a + 0.04 + 0.3 * a)
            ya, yb = horizon + (s - horizon) * a, horizon + (s - horizon) * b
            xa, xb = top_x + (bottom_x - top_x) * a, top_x + (bottom_x - top_x) * b
            cv.polygon(
                _wedge((xa, ya), (xb, yb), 0.002 * s + 0.012 * s * a, 0.002 * s + 0.012 * s * b), centre_paint
            )
            a = b + (b - a) * 0.9


def _draw_road_flat(cv: _Canvas, rng: np.random.Generator, horizon: float) -> None:
    s = cv.size
    y0 = horizon + _u(rng, 0.04, 0.2) * s
    y1 = min(float(s), y0 + _u(rng, 0.25, 0.45) * s)
    walk = _jitter(rng, _pick(rng, _PAVING), 10)
    cv.rect((0, horizon, s, y0), walk)
    cv.rect((0, y0 - 0.015 * s, s, y0 + 0.005 * s), _mix(walk, (60, 60, 60), 0.4))  # kerb
    cv.rect((0, y0, s, y1), _jitter(rng, _pick(rng, _ASPHALT), 8))
    ym = (y0 + y1) / 2
    paint = (240, 200, 40) if rng.random() < 0.4 else (240, 240, 235)
    dash, gap = _u(rng, 0.08, 0.16) * s, _u(rng, 0.06, 0.12) * s
    x = -_u(rng, 0.0, dash + gap)
    while x < s:
        cv.rect((x, ym - 0.008 * s, x + dash, ym + 0.008 * s), paint)
        x += dash + gap
    if y1 < s:
        cv.rect((0, y1, s, y1 + 0.01 * s), _mix(walk, (60, 60, 60), 0.3))


# ---------------------------------------------------------------------------------------- objects


def _draw_pedestrian(
    cv: _Canvas, rng: np.random.Generator, cx: float, y0: float, h: float, shirt: Colour
) -> None:
    skin = _jitter(rng, _pick(rng, _SKIN), 8)
    pants = _jitter(rng, _pick(rng, _PANTS), 10)
    stride = _u(rng, 0.0, 0.13) * h
    lean = _u(rng, -0.03, 0.03) * h
    hip_y = y0 + 0.55 * h
    leg_w = 0.09 * h
    shoe = (30, 28, 26)
    for side in (-1.0, 1.0):
        hip = (cx + side * 0.055 * h, hip_y)
        foot = (cx + side * stride + side * 0.03 * h, y0 + 0.95 * h)
        cv.line([hip, foot], pants, leg_w)
        cv.ellipse(foot[0] + 0.02 * h * side, foot[1] + 0.01 * h, 0.055 * h, 0.035 * h, shoe)
    swing = _u(rng, 0.0, 0.09) * h
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
        cv.chord(hx, hy - 0.01 * h, r * 1.02, 180, 360, _jitter(rng, _pick(rng, _HAIR), 8))


_CABINS = (
    ((0.20, 0.45), (0.33, 0.06), (0.66, 0.06), (0.83, 0.45)),  # sedan
    ((0.08, 0.45), (0.12, 0.05), (0.62, 0.05), (0.80, 0.45)),  # hatchback
    ((0.03, 0.45), (0.04, 0.01), (0.74, 0.01), (0.92, 0.45)),  # van
    ((0.10, 0.45), (0.15, 0.03), (0.68, 0.03), (0.85, 0.45)),  # suv
)


def _draw_car(
    cv: _Canvas, rng: np.random.Generator, x0: float, y0: float, w: float, h: float, body: Colour
) -> None:
    facing = 1.0 if rng.random() < 0.5 else -1.0

    def p(u: float, v: float) -> tuple[float, float]:
        return (x0 + (u if facing > 0 else 1.0 - u) * w, y0 + v * h)

    cabin = _pick(rng, _CABINS)
    cv.polygon([p(*q) for q in cabin], body)
    glass = _jitter(rng, _pick(rng, _GLASS), 8)
    cu = sum(q[0] for q in cabin) / 4
    inset = [(cu + (q[0] - cu) * 0.84, q[1] + 0.06 if q[1] < 0.3 else 0.43) for q in cabin]
    cv.polygon([p(*q) for q in inset], glass)
    cv.line([p(cu + 0.02, 0.1), p(cu + 0.02, 0.44)], body, 0.045 * h)  # pillar
    cv.rounded((*p(0.0, 0.42), *p(1.0, 0.84)), 0.1 * h, body)
    cv.line([p(0.02, 0.66), p(0.98, 0.66)], _mix(body, (0, 0, 0), 0.35), 0.025 * h)  # trim line
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


def _draw_stop_sign(cv: _Canvas, rng: np.random.Generator, cx: float, cy: float, r: float, sx: float) -> None:
    red = _jitter(rng, _pick(rng, ((205, 22, 28), (185, 18, 30), (225, 40, 38))), 10)
    white = _jitter(rng, (238, 238, 236), 8)
    cv.polygon(_octagon(cx, cy, r, sx), white)
    cv.polygon(_octagon(cx, cy, r * 0.85, sx), red)
    letter_w, gap = 0.22 * r * sx, 0.12 * r * sx
    x = cx - 2 * letter_w - 1.5 * gap
    for k in range(4):  # "STOP" as four white letter-like marks
        cv.rect((x, cy - 0.2 * r, x + letter_w, cy + 0.2 * r), white)
        if k == 2:  # the "O" has a hole
            cv.rect((x + 0.3 * letter_w, cy - 0.08 * r, x + 0.7 * letter_w, cy + 0.08 * r), red)
        x += letter_w + gap


def _draw_traffic_light(
    cv: _Canvas, rng: np.random.Generator, x0: float, y0: float, w: float, h: float, lit: str
) -> None:
    housing = (220, 180, 30) if rng.random() < 0.08 else _jitter(rng, _pick(rng, _HOUSING), 6)
    cv.rounded((x0, y0, x0 + w, y0 + h), 0.22 * w, housing)
    cx, r = x0 + w / 2, 0.34 * w
    for k, name in enumerate(("red", "amber", "green")):
        cy = y0 + h * (2 * k + 1) / 6
        if name == lit:
            lamp = _LAMP[name]
            cv.ellipse(cx, cy, r * 1.22, fill=_mix(housing, lamp, 0.55))
            cv.ellipse(cx, cy, r, fill=lamp)
            cv.ellipse(cx - 0.25 * r, cy - 0.25 * r, r * 0.35, fill=_mix(lamp, (255, 255, 255), 0.6))
        else:
            cv.ellipse(cx, cy, r, fill=_mix(_LAMP_OFF[name], housing, 0.3))


def _pole(cv: _Canvas, x: float, y_top: float, y_bottom: float, width: float, colour: Colour) -> None:
    if y_bottom > y_top:
        cv.rect((x - width / 2, y_top, x + width / 2, y_bottom), colour)


# ---------------------------------------------------------------------------------------- distractors


def _draw_other_sign(cv: _Canvas, rng: np.random.Generator, cx: float, cy: float, r: float) -> None:
    kind = int(rng.integers(5))
    white, red, black = (236, 236, 234), _jitter(rng, (200, 25, 30), 10), (25, 25, 25)
    if kind == 0:  # blue parking / info sign
        cv.rect((cx - r, cy - r, cx + r, cy + r), white)
        cv.rect((cx - 0.88 * r, cy - 0.88 * r, cx + 0.88 * r, cy + 0.88 * r), _jitter(rng, (30, 80, 190), 12))
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
        cv.ellipse(cx, cy, r, fill=_jitter(rng, (30, 80, 190), 12))
        cv.line([(cx, cy + 0.6 * r), (cx, cy - 0.5 * r)], white, 0.2 * r)
        cv.polygon([(cx - 0.35 * r, cy - 0.2 * r), (cx + 0.35 * r, cy - 0.2 * r), (cx, cy - 0.7 * r)], white)


def _draw_bush(cv: _Canvas, rng: np.random.Generator, cx: float, base: float, r: float) -> None:
    green = _pick(rng, _FOLIAGE)
    for _ in range(int(rng.integers(3, 6))):
        rr = r * _u(rng, 0.5, 0.9)
        cv.ellipse(
            cx + _u(rng, -0.8, 0.8) * r, base - rr * _u(rng, 0.5, 1.1), rr, rr * 0.85, _jitter(rng, green, 16)
        )


def _draw_tree(cv: _Canvas, rng: np.random.Generator, cx: float, base: float, s: float) -> None:
    height = _u(rng, 0.2, 0.55) * s
    top = max(0.1 * s, base - height)
    _pole(cv, cx, top, base, _u(rng, 0.02, 0.045) * s, _jitter(rng, (95, 65, 40), 12))
    r = _u(rng, 0.08, 0.17) * s
    green = _pick(rng, _FOLIAGE)
    for _ in range(int(rng.integers(3, 6))):
        rr = r * _u(rng, 0.55, 0.9)
        cv.ellipse(
            cx + _u(rng, -0.7, 0.7) * r, top + _u(rng, -0.5, 0.4) * r, rr, rr * 0.9, _jitter(rng, green, 16)
        )


def _draw_lamp_post(cv: _Canvas, rng: np.random.Generator, x: float, base: float, s: float) -> None:
    top = _u(rng, 0.0, 0.3) * s
    grey = _jitter(rng, (110, 110, 115), 15)
    w = _u(rng, 0.012, 0.03) * s
    _pole(cv, x, top, base, w, grey)
    arm = (0.08 * s) * (1 if rng.random() < 0.5 else -1)
    cv.line([(x, top + w), (x + arm, top + w)], grey, w * 0.8)
    cv.ellipse(x + arm, top + 2 * w, 0.025 * s, 0.012 * s, (225, 225, 210))


def _draw_box(cv: _Canvas, rng: np.random.Generator, cx: float, base: float, s: float) -> None:
    w, h = _u(rng, 0.05, 0.11) * s, _u(rng, 0.08, 0.2) * s
    colour = _jitter(rng, _pick(rng, ((60, 60, 62), (70, 95, 75), (120, 120, 118), (35, 35, 38))), 8)
    cv.rect((cx - w / 2, base - h, cx + w / 2, base), colour)
    cv.rect((cx - w / 2, base - h, cx + w / 2, base - h + 0.1 * h), _mix(colour, (0, 0, 0), 0.3))


# ---------------------------------------------------------------------------------------- scene


def _supersample(image_size: int) -> int:
    return min(8, max(2, math.ceil(128 / image_size)))


def _instances(rng: np.random.Generator, p: float, max_instances: int) -> int:
    if rng.random() >= p:
        return 0
    x = rng.random()
    n = 1 if x < 0.6 else 2 if x < 0.9 else 3
    return min(n, max_instances)


def _presence_map(presence: float | Mapping[str, float]) -> dict[str, float]:
    if isinstance(presence, Mapping):
        unknown = set(presence) - set(TASKS)
        if unknown:
            raise ConfigError(f"presence names unknown kinds {sorted(unknown)}; kinds are {list(TASKS)}")
        out = {k: float(presence.get(k, 0.4)) for k in TASKS}
    else:
        out = {k: float(presence) for k in TASKS}
    for k, v in out.items():
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"presence[{k!r}] must be in [0, 1], got {v}")
    return out


def render_scene_objects(
    rng: np.random.Generator,
    image_size: int = 64,
    *,
    presence: float | Mapping[str, float] = 0.4,
    max_instances: int = 3,
    texture_tasks: int = 0,
    texture_presence: float = 0.5,
) -> tuple[Image.Image, list[SceneObject]]:
    """Draw one scene; return the RGB image and every object drawn (with its visible fraction).

    ``presence`` is the probability that each kind appears (one float or a {kind: p} mapping); when it
    appears, it has 1 (60 %), 2 (30 %) or 3 (10 %) instances, capped at ``max_instances``.

    With ``texture_tasks`` = K > 0, a disc of a grating in each of the K directions of
    :func:`texture_directions` is added with probability ``texture_presence``, and 0 to 2 distractor discs at
    half-way directions, on top of everything else (they hide what is behind them, and their own visible
    fraction is measured like an object's); the disc of direction i is a :class:`SceneObject` of kind
    ``grating_i``. The discs come from a random stream of their own (spawned from ``rng``'s seed sequence),
    so the rest of the scene is the same as without them, up to what they cover. ``texture_relatedness``
    only changes the labels (:func:`scene_labels`), not the image.

    >>> image, objects = render_scene_objects(np.random.default_rng(3), image_size=32)
    >>> image.size, image.mode, all(0.0 <= o.visible <= 1.0 for o in objects)
    ((32, 32), 'RGB', True)
    """
    if int(image_size) < 8:
        raise ConfigError(f"image_size must be at least 8, got {image_size}")
    image_size = int(image_size)
    probs = _presence_map(presence)
    if int(max_instances) < 1:
        raise ConfigError(f"max_instances must be at least 1, got {max_instances}")
    _check_textures(texture_tasks, 0.0, texture_presence)
    ss = _supersample(image_size)
    s = image_size * ss
    horizon = int(_u(rng, 0.3, 0.55) * s)
    arr = _sky_and_ground(rng, s, horizon)
    cv = _Canvas(Image.fromarray(arr, "RGB"))
    if rng.random() < 0.55:
        _draw_city(cv, rng, horizon)
    else:
        _draw_country(cv, rng, horizon)
    if rng.random() < 0.55:
        _draw_road_perspective(cv, rng, horizon)
    else:
        _draw_road_flat(cv, rng, horizon)

    # Each item: (depth = ground y, drawing function, object index or 0). Far items (small y) first.
    items: list[tuple[float, Callable[[], None], int]] = []
    records: list[tuple[str, tuple[float, float, float, float], str | None]] = []
    ground_min = horizon + 0.03 * s

    def base_y(height: float) -> float:
        return _u(rng, max(ground_min, height + 1), s - 1)

    def add_object(
        kind: str, bbox: tuple[float, float, float, float], colour: str | None, depth: float, fn
    ) -> None:
        records.append((kind, bbox, colour))
        items.append((depth, fn, len(records)))

    for kind in TASKS:
        lo, hi = SIZE_RANGES[kind]
        for _ in range(_instances(rng, probs[kind], max_instances)):
            h = _u(rng, lo, hi) * s
            if kind == "pedestrian":
                w = 0.46 * h
                bottom = base_y(h)
                cx = _u(rng, w / 2, s - w / 2)
                colour = _pick(rng, COLOURS[kind])
                rgb = _jitter(rng, _pick(rng, _BODY_PALETTE[colour]), 12)
                bbox = (cx - w / 2, bottom - h, cx + w / 2, bottom)
                add_object(
                    kind,
                    bbox,
                    colour,
                    bottom,
                    lambda cx=cx, y0=bottom - h, h=h, rgb=rgb: _draw_pedestrian(cv, rng, cx, y0, h, rgb),
                )
            elif kind == "car":
                w = min(0.95 * s, h * _u(rng, 1.8, 2.5))
                bottom = base_y(h)
                x0 = _u(rng, 0, s - w)
                colour = _pick(rng, COLOURS[kind])
                rgb = _jitter(rng, _pick(rng, _BODY_PALETTE[colour]), 12)
                bbox = (x0, bottom - h, x0 + w, bottom)
                add_object(
                    kind,
                    bbox,
                    colour,
                    bottom,
                    lambda x0=x0, y0=bottom - h, w=w, h=h, rgb=rgb: _draw_car(cv, rng, x0, y0, w, h, rgb),
                )
            elif kind == "stop_sign":
                r = h / 2
                sx = _u(rng, 0.75, 1.0)
                cx = _u(rng, r * sx, s - r * sx)
                cy = _u(rng, r, max(r, min(s - r, horizon + 0.25 * s)))
                base = _u(rng, max(cy + r, ground_min), s)
                pole_w = 0.12 * r
                bbox = (cx - r * sx, cy - r, cx + r * sx, cy + r)

                def fn(cx=cx, cy=cy, r=r, sx=sx, base=base, pole_w=pole_w) -> None:
                    keep = cv.current
                    cv.current = 0
                    _pole(cv, cx, cy, base, pole_w, (135, 135, 140))
                    cv.current = keep
                    _draw_stop_sign(cv, rng, cx, cy, r, sx)

                add_object(kind, bbox, None, base, fn)
            else:  # traffic light
                w = 0.4 * h
                x0 = _u(rng, 0, s - w)
                y0 = _u(rng, 0, max(0.0, min(s - h, horizon + 0.2 * s - h / 2)))
                hanging = rng.random() < 0.3
                base = _u(rng, max(y0 + h, ground_min), s) if not hanging else _u(rng, ground_min, s)
                lit = _pick(rng, COLOURS[kind])
                to_left = rng.random() < 0.5

                def fn(x0=x0, y0=y0, w=w, h=h, base=base, hanging=hanging, lit=lit, to_left=to_left) -> None:
                    keep = cv.current
                    cv.current = 0
                    grey = (70, 70, 74)
                    if hanging:
                        arm_y = max(0.0, y0 - 0.08 * s)
                        _pole(cv, x0 + w / 2, arm_y, y0 + 1, 0.12 * w, grey)
                        cv.line([(x0 + w / 2, arm_y), (0.0 if to_left else float(s), arm_y)], grey, 0.1 * w)
                    else:
                        _pole(cv, x0 + w / 2, y0 + h - 1, base, 0.2 * w, grey)
                    cv.current = keep
                    _draw_traffic_light(cv, rng, x0, y0, w, h, lit)

                add_object(kind, (x0, y0, x0 + w, y0 + h), lit, base, fn)

    # Distractors and occluders (object id 0: they hide what is behind them).
    def occluder(depth: float, fn) -> None:
        items.append((depth, fn, 0))

    for _ in range(int(rng.integers(0, 3))):
        r = _u(rng, 0.05, 0.14) * s
        cx, cy = _u(rng, r, s - r), _u(rng, r, max(r, min(s - r, horizon + 0.2 * s)))
        base = _u(rng, max(cy + r, ground_min), s)

        def sign(cx=cx, cy=cy, r=r, base=base) -> None:
            _pole(cv, cx, cy, base, 0.12 * r, (135, 135, 140))
            _draw_other_sign(cv, rng, cx, cy, r)

        occluder(base, sign)
    for _ in range(int(rng.integers(0, 3))):
        x, base = _u(rng, 0, s), _u(rng, ground_min, s)
        occluder(base, lambda x=x, base=base: _draw_lamp_post(cv, rng, x, base, s))
    for _ in range(int(rng.integers(0, 3))):
        x, base = _u(rng, 0, s), _u(rng, ground_min, s)
        occluder(base, lambda x=x, base=base: _draw_tree(cv, rng, x, base, s))
    for _ in range(int(rng.integers(0, 4))):
        x, base, r = _u(rng, 0, s), _u(rng, ground_min, s), _u(rng, 0.05, 0.12) * s
        occluder(base, lambda x=x, base=base, r=r: _draw_bush(cv, rng, x, base, r))
    if rng.random() < 0.3:
        x, base = _u(rng, 0, s), _u(rng, ground_min, s)
        occluder(base, lambda x=x, base=base: _draw_box(cv, rng, x, base, s))
    # Targeted occluders: a pole, bush or foliage in front of some objects.
    for depth, _, idx in list(items):
        if idx == 0 or rng.random() >= 0.3:
            continue
        _kind, (x0, y0, x1, y1), _c = records[idx - 1]
        front = depth + _u(rng, 1.0, 0.05 * s)
        x = _u(rng, x0, x1)
        choice = rng.random()
        if choice < 0.4:
            width, top = _u(rng, 0.015, 0.04) * s, _u(rng, 0, y0)
            grey = _jitter(rng, (110, 110, 115), 15)
            occluder(
                front,
                lambda x=x, top=top, front=front, width=width, grey=grey: _pole(
                    cv, x, top, front, width, grey
                ),
            )
        elif choice < 0.75 and _kind in ("pedestrian", "car"):
            r = _u(rng, 0.3, 0.6) * (y1 - y0)
            occluder(front, lambda x=x, front=front, r=r: _draw_bush(cv, rng, x, front, r))
        else:
            r = _u(rng, 0.25, 0.5) * (y1 - y0)
            y = _u(rng, y0, y1)

            def foliage(x=x, y=y, r=r) -> None:
                green = _pick(rng, _FOLIAGE)
                for _ in range(3):
                    rr = r * _u(rng, 0.6, 1.0)
                    cv.ellipse(
                        x + _u(rng, -0.6, 0.6) * r,
                        y + _u(rng, -0.6, 0.6) * r,
                        rr,
                        rr * 0.85,
                        _jitter(rng, green, 16),
                    )

            occluder(front, foliage)

    if texture_tasks:
        # Their own stream: spawning from the seed sequence does not advance ``rng``.
        texture_rng = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
        for direction, box, patch, mask in _texture_discs(
            texture_rng, s, image_size, int(texture_tasks), texture_presence
        ):
            def disc(patch=patch, mask=mask, box=box) -> None:
                cv.paste(patch, mask, box)

            if direction is None:
                occluder(math.inf, disc)
            else:
                bbox = (box[0], box[1], box[2], box[3])
                add_object(f"grating_{direction}", bbox, None, math.inf, disc)

    items.sort(key=lambda it: it[0])
    cv.track = True
    full = np.zeros(len(records) + 1, dtype=np.int64)
    for _depth, fn, idx in items:
        cv.current = idx
        fn()
        if idx:
            full[idx] = np.count_nonzero(np.asarray(cv.ids) == idx)
    visible = np.bincount(np.asarray(cv.ids).ravel(), minlength=256)[: len(records) + 1]
    objects = [
        SceneObject(
            kind,
            (bx0 / s, by0 / s, bx1 / s, by1 / s),
            colour,
            float(visible[i + 1] / full[i + 1]) if full[i + 1] else 0.0,
        )
        for i, (kind, (bx0, by0, bx1, by1), colour) in enumerate(records)
    ]
    return _finish(cv.image, rng, image_size), objects


def _finish(image: Image.Image, rng: np.random.Generator, image_size: int) -> Image.Image:
    """Downscale with LANCZOS, then global brightness/contrast/colour cast, a smooth light field and noise."""
    small = image.resize((image_size, image_size), Image.Resampling.LANCZOS)
    a = np.asarray(small, dtype=np.float32)
    gain = float(np.clip(math.exp(0.18 * float(rng.standard_normal())), 0.6, 1.35))
    contrast = _u(rng, 0.8, 1.15)
    cast = 1.0 + rng.uniform(-0.06, 0.06, size=3).astype(np.float32)
    coarse = rng.standard_normal((3, 3)).astype(np.float32)
    field = np.asarray(
        Image.fromarray(coarse, mode="F").resize((image_size, image_size), Image.Resampling.BILINEAR),
        np.float32,
    )
    amp = _u(rng, 0.0, 0.12)
    a = ((a - 128.0) * contrast + 128.0) * (gain * cast) * (1.0 + amp * field)[..., None]
    sigma = _u(rng, 0.0, 6.0)
    a += rng.standard_normal(a.shape, dtype=np.float32) * sigma
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "RGB")


def render_scene(
    rng: np.random.Generator,
    image_size: int = 64,
    extra_tasks: int = 0,
    *,
    presence: float | Mapping[str, float] = 0.4,
    max_instances: int = 3,
    min_visible: float = 0.4,
    texture_tasks: int = 0,
    texture_relatedness: float = 0.0,
    texture_presence: float = 0.5,
) -> tuple[Image.Image, dict[str, int]]:
    """Draw one scene; return the RGB image and its labels {task: 0/1} for base + extra tasks, then
    ``texture_tasks`` texture tasks (see :func:`texture_weights`).

    An object counts only when at least ``min_visible`` of it is visible (see the module docstring).

    >>> image, labels = render_scene(np.random.default_rng(0), image_size=32, extra_tasks=2)
    >>> image.size, image.mode, list(labels)
    ((32, 32), 'RGB', ['pedestrian', 'car', 'stop_sign', 'traffic_light', 'pedestrian_left', 'car_left'])
    """
    _extra_specs(extra_tasks)  # validate before drawing
    image, objects = render_scene_objects(rng, image_size, presence=presence, max_instances=max_instances,
                                          texture_tasks=texture_tasks, texture_presence=texture_presence)
    return image, scene_labels(objects, extra_tasks, min_visible, texture_tasks, texture_relatedness)


# ---------------------------------------------------------------------------------------- data set


def _image_rng(seed: int, index: int) -> np.random.Generator:
    """Generator of image ``index``: child ``index`` of ``SeedSequence(seed)`` (independent of n, order)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def _render_chunk(args: tuple) -> list[tuple[int, dict[str, int]]]:
    out_dir, names, seed, indices, image_size, extra_tasks, presence, max_instances, min_visible, textures = args
    out = []
    for i in indices:
        image, labels = render_scene(
            _image_rng(seed, i),
            image_size,
            extra_tasks,
            presence=presence,
            max_instances=max_instances,
            min_visible=min_visible,
            **textures,
        )
        image.save(Path(out_dir) / names[i], format="PNG")
        out.append((i, labels))
    return out


def generate_road_scenes(
    out_dir: str | Path,
    n_images: int = 2000,
    image_size: int = 64,
    extra_tasks: int = 0,
    unknown_fraction: float = 0.0,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    progress: bool = False,
    *,
    presence: float | Mapping[str, float] = 0.4,
    max_instances: int = 3,
    min_visible: float = 0.4,
    workers: int = 1,
    texture_tasks: int = 0,
    texture_relatedness: float = 0.0,
    texture_presence: float = 0.5,
) -> Path:
    """Write out_dir/images/scene_00000.png ... and out_dir/labels.csv; return the labels.csv path.

    ``labels.csv`` has the columns ``image`` (path relative to ``out_dir``), one column per task (base
    tasks, then ``extra_tasks`` attribute tasks) with ``1``, ``0`` or ``?``, and ``split`` (``train``,
    ``val`` or ``test``: a seeded shuffle with ``round(n * val_fraction)`` val rows and
    ``round(n * test_fraction)`` test rows).

    ``unknown_fraction`` hides that fraction of the label cells (exactly, rounded, chosen at random with the
    seed) in the **train and val splits only**: the test split keeps every label known so evaluations stay
    honest. ``labels_full.csv`` beside it holds the same rows with every label known.

    Image ``i`` is drawn from child ``i`` of ``numpy.random.SeedSequence(seed)``, so it does not depend on
    ``n_images``, on the order of generation or on ``workers``; the same seed gives byte-identical files.
    ``workers`` > 1 renders in that many processes (``forkserver``; the calling script needs an
    ``if __name__ == "__main__":`` guard). The default, one process, draws about 500 images of 64 px a second.
    ``presence``, ``max_instances`` and ``min_visible`` are passed to :func:`render_scene`, and so are
    ``texture_tasks``, ``texture_relatedness`` and ``texture_presence``: ``texture_tasks`` = K > 0 adds the
    columns ``texture_0`` … ``texture_{K-1}`` after the attribute tasks, tasks whose shared features are set by
    ``texture_relatedness`` (see :func:`texture_weights`; the images do not depend on it, only the labels do).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = generate_road_scenes(d, n_images=10, image_size=16, unknown_fraction=0.3, seed=1)
    ...     sorted(p.name for p in path.parent.iterdir()), len(list((path.parent / "images").iterdir()))
    (['images', 'labels.csv', 'labels_full.csv'], 10)
    """
    if isinstance(n_images, bool) or int(n_images) != n_images or n_images < 1:
        raise ConfigError(f"n_images must be a positive integer, got {n_images!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0.0 <= unknown_fraction <= 1.0:
        raise ConfigError(f"unknown_fraction must be in [0, 1], got {unknown_fraction}")
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction > 1:
        raise ConfigError(
            "val_fraction and test_fraction must be >= 0 with a sum <= 1, "
            f"got {val_fraction} and {test_fraction}"
        )
    if int(image_size) < 8:
        raise ConfigError(f"image_size must be at least 8, got {image_size}")
    n, seed, image_size = int(n_images), int(seed), int(image_size)
    _check_textures(texture_tasks, texture_relatedness, texture_presence)
    names = list(TASKS) + extra_task_names(extra_tasks) + texture_task_names(texture_tasks)
    presence = _presence_map(presence)
    textures = {"texture_tasks": int(texture_tasks), "texture_relatedness": float(texture_relatedness),
                "texture_presence": float(texture_presence)}

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    digits = max(5, len(str(n - 1)))
    files = [f"images/scene_{i:0{digits}d}.png" for i in range(n)]

    n_workers = max(1, int(workers or 1))
    chunk = max(1, min(64, math.ceil(n / (4 * n_workers))))
    jobs = [
        (
            str(out),
            files,
            seed,
            range(a, min(n, a + chunk)),
            image_size,
            extra_tasks,
            presence,
            max_instances,
            min_visible,
            textures,
        )
        for a in range(0, n, chunk)
    ]
    labels: list[dict[str, int] | None] = [None] * n
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=False)
        bar.start()
        task_id = bar.add_task("road scenes", total=n)
    try:
        if n_workers == 1:
            results = map(_render_chunk, jobs)
            _collect(results, labels, bar)
        else:
            ctx = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
                _collect(pool.map(_render_chunk, jobs), labels, bar)
    finally:
        if bar is not None:
            bar.update(task_id, completed=n)
            bar.stop()

    table = np.array([[lab[t] for t in names] for lab in labels], dtype=np.int8)  # type: ignore[index]
    split_rng = np.random.default_rng([seed, 1])
    order = split_rng.permutation(n)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    split = np.array(["train"] * n, dtype=object)
    split[order[:n_test]] = "test"
    split[order[n_test : n_test + n_val]] = "val"

    hidden = np.zeros(table.shape, dtype=bool)
    trainval = np.flatnonzero(split != "test")
    cells = trainval.size * len(names)
    k = round(cells * unknown_fraction)
    if k:
        chosen = np.random.default_rng([seed, 2]).choice(cells, size=k, replace=False)
        hidden[trainval[chosen // len(names)], chosen % len(names)] = True

    header = ["image", *names, "split"]
    _write_csv(out / "labels_full.csv", header, files, table, np.zeros_like(hidden), split)
    path = out / "labels.csv"
    _write_csv(path, header, files, table, hidden, split)
    return path


def _collect(results: Iterable[list[tuple[int, dict[str, int]]]], labels: list, bar: Progress | None) -> None:
    for chunk in results:
        for i, lab in chunk:
            labels[i] = lab
        if bar is not None:
            bar.advance(bar.task_ids[0], len(chunk))


def _write_csv(
    path: Path, header: list[str], files: list[str], table: np.ndarray, hidden: np.ndarray, split: np.ndarray
) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for i, file in enumerate(files):
            cells = ["?" if hidden[i, j] else str(int(v)) for j, v in enumerate(table[i])]
            writer.writerow([file, *cells, split[i]])
