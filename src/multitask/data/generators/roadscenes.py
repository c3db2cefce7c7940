"""One road scene: the background, the objects of the base tasks, distractors and occluders, drawn in depth order.

Objects and occluders are first *placed* (every random number of their position and size is drawn), each as a
drawing function with its depth (the ground line: far things first); then they are drawn from far to near,
with an object-id map alongside that measures how much of each object stays visible.

>>> image, objects = render_scene_objects(np.random.default_rng(3), image_size=32)
>>> image.size, image.mode, all(0.0 <= o.visible <= 1.0 for o in objects)
((32, 32), 'RGB', True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

import numpy as np
from PIL import Image

from multitask.data.generators import background, distractors, objects
from multitask.data.generators.drawing import Canvas, jitter, pick, pole, uniform
from multitask.data.generators.palette import BODY_PALETTE
from multitask.data.generators.tasks import COLOURS, SIZE_RANGES, TASKS, SceneObject, extra_specs, scene_labels
from multitask.data.generators.textures import check_textures, texture_discs
from multitask.errors import ConfigError

Box = tuple[float, float, float, float]


@dataclass
class Layout:
    """A scene being placed: the canvas at the drawing resolution, the horizon, and what is to be drawn.

    ``items`` are (depth, drawing function, object number or 0 for an occluder); ``records`` the objects'
    (kind, box in pixels, colour family).
    """

    cv: Canvas
    rng: np.random.Generator
    horizon: float
    items: list[tuple[float, Callable[[], None], int]] = field(default_factory=list)
    records: list[tuple[str, Box, str | None]] = field(default_factory=list)

    @property
    def s(self) -> int:
        return self.cv.size

    @property
    def ground_min(self) -> float:
        return self.horizon + 0.03 * self.s

    def base_y(self, height: float) -> float:
        """A random ground line for something `height` tall."""
        return uniform(self.rng, max(self.ground_min, height + 1), self.s - 1)

    def add_object(self, kind: str, bbox: Box, colour: str | None, depth: float, fn: Callable[[], None]) -> None:
        self.records.append((kind, bbox, colour))
        self.items.append((depth, fn, len(self.records)))

    def occluder(self, depth: float, fn: Callable[[], None]) -> None:
        """Something drawn with object id 0: it hides what is behind it and is not counted."""
        self.items.append((depth, fn, 0))

    def unlabelled(self, fn: Callable[[], None]) -> None:
        """Draw with object id 0 (poles and mounting arms are not part of the object they carry)."""
        keep = self.cv.current
        self.cv.current = 0
        fn()
        self.cv.current = keep


# ------------------------------------------------------------------------------------------ objects


def place_pedestrian(scene: Layout, h: float) -> None:
    rng, cv, s = scene.rng, scene.cv, scene.s
    w = 0.46 * h
    bottom = scene.base_y(h)
    cx = uniform(rng, w / 2, s - w / 2)
    colour = pick(rng, COLOURS["pedestrian"])
    rgb = jitter(rng, pick(rng, BODY_PALETTE[colour]), 12)
    scene.add_object("pedestrian", (cx - w / 2, bottom - h, cx + w / 2, bottom), colour, bottom,
                     lambda: objects.draw_pedestrian(cv, rng, cx, bottom - h, h, rgb))


def place_car(scene: Layout, h: float) -> None:
    rng, cv, s = scene.rng, scene.cv, scene.s
    w = min(0.95 * s, h * uniform(rng, 1.8, 2.5))
    bottom = scene.base_y(h)
    x0 = uniform(rng, 0, s - w)
    colour = pick(rng, COLOURS["car"])
    rgb = jitter(rng, pick(rng, BODY_PALETTE[colour]), 12)
    scene.add_object("car", (x0, bottom - h, x0 + w, bottom), colour, bottom,
                     lambda: objects.draw_car(cv, rng, x0, bottom - h, w, h, rgb))


def place_stop_sign(scene: Layout, h: float) -> None:
    rng, cv, s = scene.rng, scene.cv, scene.s
    r = h / 2
    sx = uniform(rng, 0.75, 1.0)
    cx = uniform(rng, r * sx, s - r * sx)
    cy = uniform(rng, r, max(r, min(s - r, scene.horizon + 0.25 * s)))
    base = uniform(rng, max(cy + r, scene.ground_min), s)

    def draw() -> None:
        scene.unlabelled(lambda: pole(cv, cx, cy, base, 0.12 * r, (135, 135, 140)))
        objects.draw_stop_sign(cv, rng, cx, cy, r, sx)

    scene.add_object("stop_sign", (cx - r * sx, cy - r, cx + r * sx, cy + r), None, base, draw)


def place_traffic_light(scene: Layout, h: float) -> None:
    rng, cv, s = scene.rng, scene.cv, scene.s
    w = 0.4 * h
    x0 = uniform(rng, 0, s - w)
    y0 = uniform(rng, 0, max(0.0, min(s - h, scene.horizon + 0.2 * s - h / 2)))
    hanging = rng.random() < 0.3
    base = uniform(rng, max(y0 + h, scene.ground_min), s) if not hanging else uniform(rng, scene.ground_min, s)
    lit = pick(rng, COLOURS["traffic_light"])
    to_left = rng.random() < 0.5

    def mounting() -> None:
        grey = (70, 70, 74)
        if hanging:
            arm_y = max(0.0, y0 - 0.08 * s)
            pole(cv, x0 + w / 2, arm_y, y0 + 1, 0.12 * w, grey)
            cv.line([(x0 + w / 2, arm_y), (0.0 if to_left else float(s), arm_y)], grey, 0.1 * w)
        else:
            pole(cv, x0 + w / 2, y0 + h - 1, base, 0.2 * w, grey)

    def draw() -> None:
        scene.unlabelled(mounting)
        objects.draw_traffic_light(cv, rng, x0, y0, w, h, lit)

    scene.add_object("traffic_light", (x0, y0, x0 + w, y0 + h), lit, base, draw)


PLACE = {"pedestrian": place_pedestrian, "car": place_car, "stop_sign": place_stop_sign,
         "traffic_light": place_traffic_light}


def instances(rng: np.random.Generator, p: float, max_instances: int) -> int:
    """How many of a kind: 0 with probability 1 − p, else 1 (60 %), 2 (30 %) or 3 (10 %), capped."""
    if rng.random() >= p:
        return 0
    x = rng.random()
    n = 1 if x < 0.6 else 2 if x < 0.9 else 3
    return min(n, max_instances)


def place_objects(scene: Layout, probs: Mapping[str, float], max_instances: int) -> None:
    for kind in TASKS:
        lo, hi = SIZE_RANGES[kind]
        for _ in range(instances(scene.rng, probs[kind], max_instances)):
            PLACE[kind](scene, uniform(scene.rng, lo, hi) * scene.s)


# ------------------------------------------------------------------------------------------ occluders


def place_distractors(scene: Layout) -> None:
    """Other signs, lamp posts, trees, bushes and a utility box at random places."""
    rng, cv, s = scene.rng, scene.cv, scene.s
    for _ in range(int(rng.integers(0, 3))):
        r = uniform(rng, 0.05, 0.14) * s
        cx, cy = uniform(rng, r, s - r), uniform(rng, r, max(r, min(s - r, scene.horizon + 0.2 * s)))
        base = uniform(rng, max(cy + r, scene.ground_min), s)

        def sign(cx: float = cx, cy: float = cy, r: float = r, base: float = base) -> None:
            pole(cv, cx, cy, base, 0.12 * r, (135, 135, 140))
            distractors.draw_other_sign(cv, rng, cx, cy, r)

        scene.occluder(base, sign)
    for draw in (distractors.draw_lamp_post, distractors.draw_tree):
        for _ in range(int(rng.integers(0, 3))):
            x, base = uniform(rng, 0, s), uniform(rng, scene.ground_min, s)
            scene.occluder(base, lambda draw=draw, x=x, base=base: draw(cv, rng, x, base, s))
    for _ in range(int(rng.integers(0, 4))):
        x, base, r = uniform(rng, 0, s), uniform(rng, scene.ground_min, s), uniform(rng, 0.05, 0.12) * s
        scene.occluder(base, lambda x=x, base=base, r=r: distractors.draw_bush(cv, rng, x, base, r))
    if rng.random() < 0.3:
        x, base = uniform(rng, 0, s), uniform(rng, scene.ground_min, s)
        scene.occluder(base, lambda: distractors.draw_box(cv, rng, x, base, s))


def place_targeted_occluders(scene: Layout) -> None:
    """A pole, bush or foliage just in front of about a third of the objects."""
    rng, cv, s = scene.rng, scene.cv, scene.s
    for depth, _, idx in list(scene.items):
        if idx == 0 or rng.random() >= 0.3:
            continue
        kind, (x0, y0, x1, y1), _colour = scene.records[idx - 1]
        front = depth + uniform(rng, 1.0, 0.05 * s)
        x = uniform(rng, x0, x1)
        choice = rng.random()
        if choice < 0.4:
            width, top = uniform(rng, 0.015, 0.04) * s, uniform(rng, 0, y0)
            grey = jitter(rng, (110, 110, 115), 15)
            scene.occluder(front, lambda x=x, top=top, front=front, width=width, grey=grey:
                           pole(cv, x, top, front, width, grey))
        elif choice < 0.75 and kind in ("pedestrian", "car"):
            r = uniform(rng, 0.3, 0.6) * (y1 - y0)
            scene.occluder(front, lambda x=x, front=front, r=r: distractors.draw_bush(cv, rng, x, front, r))
        else:
            r = uniform(rng, 0.25, 0.5) * (y1 - y0)
            y = uniform(rng, y0, y1)
            scene.occluder(front, lambda x=x, y=y, r=r: distractors.draw_foliage(cv, rng, x, y, r))


def place_textures(scene: Layout, image_size: int, texture_tasks: int, texture_presence: float) -> None:
    """Grating discs on top of everything; they come from their own stream (spawned from the scene's seed
    sequence, which does not advance the scene's generator)."""
    texture_rng = np.random.default_rng(scene.rng.bit_generator.seed_seq.spawn(1)[0])
    for direction, box, patch, mask in texture_discs(texture_rng, scene.s, image_size, texture_tasks,
                                                     texture_presence):
        def disc(patch: Image.Image = patch, mask: Image.Image = mask, box: tuple[int, int, int, int] = box) -> None:
            scene.cv.paste(patch, mask, box)

        if direction is None:
            scene.occluder(math.inf, disc)
        else:
            scene.add_object(f"grating_{direction}", (box[0], box[1], box[2], box[3]), None, math.inf, disc)


# ------------------------------------------------------------------------------------------ the scene


def draw_in_depth_order(scene: Layout) -> list[SceneObject]:
    """Draw every item far to near, tracking object ids; each object with the fraction of it left visible."""
    cv, s = scene.cv, scene.s
    scene.items.sort(key=lambda it: it[0])
    cv.track = True
    full = np.zeros(len(scene.records) + 1, dtype=np.int64)
    for _depth, fn, idx in scene.items:
        cv.current = idx
        fn()
        if idx:
            full[idx] = np.count_nonzero(np.asarray(cv.ids) == idx)
    visible = np.bincount(np.asarray(cv.ids).ravel(), minlength=256)[: len(scene.records) + 1]
    return [SceneObject(kind, (bx0 / s, by0 / s, bx1 / s, by1 / s), colour,
                        float(visible[i + 1] / full[i + 1]) if full[i + 1] else 0.0)
            for i, (kind, (bx0, by0, bx1, by1), colour) in enumerate(scene.records)]


def supersample(image_size: int) -> int:
    """Drawing resolution factor: at least 128 px drawn, 2 to 8 times the output size."""
    return min(8, max(2, math.ceil(128 / image_size)))


def presence_map(presence: float | Mapping[str, float]) -> dict[str, float]:
    """{kind: probability} from one float or a partial mapping (missing kinds: 0.4)."""
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
    :func:`~multitask.data.generators.textures.texture_directions` is added with probability
    ``texture_presence``, and 0 to 2 distractor discs at half-way directions, on top of everything else (they
    hide what is behind them, and their own visible fraction is measured like an object's); the disc of
    direction i is a :class:`SceneObject` of kind ``grating_i``. The discs come from a random stream of their
    own (spawned from ``rng``'s seed sequence), so the rest of the scene is the same as without them, up to
    what they cover. ``texture_relatedness`` only changes the labels (:func:`scene_labels`), not the image.
    """
    if int(image_size) < 8:
        raise ConfigError(f"image_size must be at least 8, got {image_size}")
    image_size = int(image_size)
    probs = presence_map(presence)
    if int(max_instances) < 1:
        raise ConfigError(f"max_instances must be at least 1, got {max_instances}")
    check_textures(texture_tasks, 0.0, texture_presence)
    s = image_size * supersample(image_size)
    horizon = int(uniform(rng, 0.3, 0.55) * s)
    cv = Canvas(Image.fromarray(background.sky_and_ground(rng, s, horizon), "RGB"))
    (background.draw_city if rng.random() < 0.55 else background.draw_country)(cv, rng, horizon)
    (background.draw_road_perspective if rng.random() < 0.55 else background.draw_road_flat)(cv, rng, horizon)
    scene = Layout(cv, rng, horizon)
    place_objects(scene, probs, max_instances)
    place_distractors(scene)
    place_targeted_occluders(scene)
    if texture_tasks:
        place_textures(scene, image_size, int(texture_tasks), texture_presence)
    drawn = draw_in_depth_order(scene)
    return finish(cv.image, rng, image_size), drawn


def finish(image: Image.Image, rng: np.random.Generator, image_size: int) -> Image.Image:
    """Downscale with LANCZOS, then global brightness/contrast/colour cast, a smooth light field and noise."""
    small = image.resize((image_size, image_size), Image.Resampling.LANCZOS)
    a = np.asarray(small, dtype=np.float32)
    gain = float(np.clip(math.exp(0.18 * float(rng.standard_normal())), 0.6, 1.35))
    contrast = uniform(rng, 0.8, 1.15)
    cast = 1.0 + rng.uniform(-0.06, 0.06, size=3).astype(np.float32)
    coarse = rng.standard_normal((3, 3)).astype(np.float32)
    light = np.asarray(Image.fromarray(coarse, mode="F").resize((image_size, image_size), Image.Resampling.BILINEAR),
                       np.float32)
    amp = uniform(rng, 0.0, 0.12)
    a = ((a - 128.0) * contrast + 128.0) * (gain * cast) * (1.0 + amp * light)[..., None]
    sigma = uniform(rng, 0.0, 6.0)
    a += rng.standard_normal(a.shape, dtype=np.float32) * sigma
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "RGB")


class SceneOptions(TypedDict, total=False):
    """The keyword options of one scene (:func:`render_scene`, :func:`render_labelled_scene`); a missing one
    takes its :data:`SCENE_DEFAULTS` value. What is drawn: ``presence``, ``max_instances``, ``texture_tasks`` and
    ``texture_presence`` (see :func:`render_scene_objects`); how it is labelled: ``min_visible`` and
    ``texture_relatedness`` (see :func:`~multitask.data.generators.tasks.scene_labels`)."""

    presence: float | Mapping[str, float]
    max_instances: int
    min_visible: float
    texture_tasks: int
    texture_relatedness: float
    texture_presence: float


SCENE_DEFAULTS: SceneOptions = {"presence": 0.4, "max_instances": 3, "min_visible": 0.4, "texture_tasks": 0,
                                "texture_relatedness": 0.0, "texture_presence": 0.5}


def scene_options(options: Mapping[str, object]) -> SceneOptions:
    """`options` over :data:`SCENE_DEFAULTS`; a name that is not a scene option is a TypeError, like a wrong
    keyword argument.

    >>> options = scene_options({"presence": 0.7})
    >>> options["presence"], options["max_instances"]
    (0.7, 3)
    >>> scene_options({"colour": 1})
    Traceback (most recent call last):
    TypeError: got an unexpected keyword argument 'colour'
    """
    for name in options:
        if name not in SCENE_DEFAULTS:
            raise TypeError(f"got an unexpected keyword argument {name!r}")
    return {**SCENE_DEFAULTS, **options}  # type: ignore[typeddict-item]


def render_scene(
    rng: np.random.Generator, image_size: int = 64, extra_tasks: int = 0, **options: Unpack[SceneOptions]
) -> tuple[Image.Image, dict[str, int]]:
    """Draw one scene; return the RGB image and its labels {task: 0/1} for base + extra tasks, then
    ``texture_tasks`` texture tasks (see :func:`~multitask.data.generators.textures.texture_weights`).

    An object counts only when at least ``min_visible`` of it is visible (see :mod:`multitask.data.generators`).
    The options and their defaults: :class:`SceneOptions`.

    >>> image, labels = render_scene(np.random.default_rng(0), image_size=32, extra_tasks=2)
    >>> image.size, image.mode, list(labels)
    ((32, 32), 'RGB', ['pedestrian', 'car', 'stop_sign', 'traffic_light', 'pedestrian_left', 'car_left'])
    """
    image, labels, _ = render_labelled_scene(rng, image_size, extra_tasks, **options)
    return image, labels


def render_labelled_scene(
    rng: np.random.Generator, image_size: int = 64, extra_tasks: int = 0, **options: Unpack[SceneOptions]
) -> tuple[Image.Image, dict[str, int], list[SceneObject]]:
    """:func:`render_scene` that also returns every object drawn (for its boxes); the same image and labels."""
    o = scene_options(options)
    extra_specs(extra_tasks)  # validate before drawing
    image, drawn = render_scene_objects(rng, image_size, presence=o["presence"], max_instances=o["max_instances"],
                                        texture_tasks=o["texture_tasks"], texture_presence=o["texture_presence"])
    labels = scene_labels(drawn, extra_tasks, o["min_visible"], o["texture_tasks"], o["texture_relatedness"])
    return image, labels, drawn
