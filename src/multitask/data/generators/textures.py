"""Texture tasks: discs of sinusoidal gratings in K directions, and labels whose shared features are a knob.

See :func:`texture_weights` for how ``texture_relatedness`` sets the features the tasks share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from multitask.data.generators.drawing import hsv, uniform
from multitask.data.generators.palette import Colour
from multitask.errors import ConfigError

TEXTURE_MAX_TASKS = 24
"""At most this many texture tasks (their grating directions are π / K apart)."""

_TEXTURE_OFFSET = math.pi / 8  # directions keep clear of the pixel grid's 0° and 90°
_TEXTURE_PERIOD = (3.5, 4.5)  # grating period, in output pixels
_TEXTURE_RADIUS = (0.13, 0.18)  # disc radius, as a fraction of the image side
_TEXTURE_JITTER = 0.1  # direction jitter of every disc: ± this × π / K
_TEXTURE_OWN = 1e-3  # a task's own direction breaks ties


def check_textures(n: int, relatedness: float, presence: float) -> None:
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
    check_textures(n, 0.0, 0.0)
    return [f"texture_{k}" for k in range(int(n))]


def texture_directions(n: int) -> np.ndarray:
    """The K = ``n`` grating directions (radians) of the texture discs: π/8 + i π/K. (Distractor discs take the
    half-way directions π/8 + (i + ½) π/K.)

    >>> [round(math.degrees(a), 1) for a in texture_directions(4)]
    [22.5, 67.5, 112.5, 157.5]
    """
    check_textures(n, 0.0, 0.0)
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
    check_textures(n, relatedness, 0.0)
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


def texture_discs(
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
        r = uniform(rng, *_TEXTURE_RADIUS) * s
        draws.append({
            "present": float(rng.random()), "r": r, "cx": uniform(rng, r, s - r), "cy": uniform(rng, r, s - r),
            "period": uniform(rng, *_TEXTURE_PERIOD) * scale, "phase": uniform(rng, 0, 2 * math.pi),
            "jitter": uniform(rng, -1, 1) * _TEXTURE_JITTER * step, "hue": float(rng.random()),
            "contrast": uniform(rng, 0.6, 1.0), "sat": uniform(rng, 0.4, 0.9), "bright": uniform(rng, 0.75, 1.0),
            "dark": uniform(rng, 0.1, 0.3), "slot": int(rng.integers(n)),
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
        light, dark = hsv(d["hue"], d["sat"], d["bright"]), hsv(d["hue"], d["sat"], d["dark"])
        image, mask = _grating_disc(d["r"], d["period"], theta, d["phase"], light, dark, d["contrast"])
        x0, y0 = int(round(d["cx"] - d["r"])), int(round(d["cy"] - d["r"]))
        out.append((direction, (x0, y0, x0 + image.size[0], y0 + image.size[1]), image, mask))
    return out
