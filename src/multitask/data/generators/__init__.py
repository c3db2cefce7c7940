"""Built-in synthetic road scenes: a procedural multi-label image generator (no downloads).

Every scene is drawn with PIL at a higher resolution and downscaled with LANCZOS: a sky gradient of varied
hue (clear, overcast, dusk), a city skyline or hills, a road in perspective or seen from the side with lane
markings, grass or pavement (:mod:`.background`), then objects (:mod:`.objects`) and distractors
(:mod:`.distractors`) in depth order (far first), so nearer things hide farther ones, and last a global
brightness/contrast/colour-cast change, a smooth illumination field and pixel noise (:mod:`.roadscenes`).
:mod:`.writer` writes a data set.

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

Extra tasks (:func:`extra_task_names`, :mod:`.tasks`) are attributes of the same objects, so they share
low-level features with the base tasks: colour family, left/right half, top/bottom half (of the object's box
centre), large/small (box height against the middle of the kind's size range) and "two or more", then pairs of
those. An attribute task is 1 when at least one counted object of its kind has every attribute in the name
(``two_cars``: at least two counted cars), so an attribute task that is 1 implies its base task is 1.

Texture tasks (``texture_tasks=K``, :mod:`.textures`) are a second family whose overlap in features is a knob.
Over the same backgrounds, each scene holds discs of sinusoidal gratings (period 3.5 to 4.5 output pixels,
random tint, phase and contrast) in K directions (:func:`texture_directions`), each present with probability
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

from multitask.data.generators.roadscenes import render_scene, render_scene_objects
from multitask.data.generators.tasks import (
    COLOURS,
    SIZE_RANGES,
    TASKS,
    SceneObject,
    extra_task_names,
    max_extra_tasks,
    scene_labels,
)
from multitask.data.generators.textures import (
    TEXTURE_MAX_TASKS,
    texture_directions,
    texture_labels,
    texture_task_names,
    texture_weights,
)
from multitask.data.generators.writer import generate_road_scenes

__all__ = [
    "COLOURS",
    "SIZE_RANGES",
    "TASKS",
    "TEXTURE_MAX_TASKS",
    "SceneObject",
    "extra_task_names",
    "generate_road_scenes",
    "max_extra_tasks",
    "render_scene",
    "render_scene_objects",
    "scene_labels",
    "texture_directions",
    "texture_labels",
    "texture_task_names",
    "texture_weights",
]
