"""The road scenes' tasks: base tasks (object kinds), attribute tasks of the same objects, and their labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from multitask.data.generators.palette import BODY_PALETTE, LAMP
from multitask.data.generators.textures import texture_labels, texture_task_names
from multitask.errors import ConfigError

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

#: Colour families per kind (the attribute values of the colour tasks).
COLOURS: dict[str, tuple[str, ...]] = {
    "pedestrian": tuple(BODY_PALETTE),
    "car": tuple(BODY_PALETTE),
    "stop_sign": (),
    "traffic_light": tuple(LAMP),
}


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


def extra_specs(n: int) -> tuple[_AttrTask, ...]:
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
    return [t.name for t in extra_specs(n)]


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
    specs = extra_specs(extra_tasks)
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
