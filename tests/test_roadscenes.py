"""Tests for the built-in road-scene generator."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from multitask.data.generators import (
    SIZE_RANGES,
    TASKS,
    SceneObject,
    extra_task_names,
    generate_road_scenes,
    max_extra_tasks,
    render_scene,
    render_scene_objects,
    scene_labels,
)
from multitask.data.generators.drawing import Canvas
from multitask.data.generators.objects import draw_stop_sign
from multitask.data.generators.writer import image_rng


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    return generate_road_scenes(out, n_images=40, image_size=32, extra_tasks=5, seed=7)


def test_tiny_set_layout(tiny: Path) -> None:
    header, rows = _read(tiny)
    names = list(TASKS) + extra_task_names(5)
    assert header == ["image", *names, "split"]
    assert len(rows) == 40
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    assert sum(r["split"] == "val" for r in rows) == 6 and sum(r["split"] == "test" for r in rows) == 6
    for i, r in enumerate(rows):
        assert r["image"] == f"images/scene_{i:05d}.png"
        assert all(r[t] in {"0", "1", "?"} for t in names)
        with Image.open(tiny.parent / r["image"]) as im:
            assert im.size == (32, 32) and im.mode == "RGB"
    assert (tiny.parent / "labels_full.csv").read_text() == tiny.read_text()  # nothing hidden by default


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, tiny: Path) -> None:
    again = generate_road_scenes(tmp_path / "a", n_images=40, image_size=32, extra_tasks=5, seed=7, workers=1)
    assert again.read_bytes() == tiny.read_bytes()
    for name in ("scene_00000.png", "scene_00017.png", "scene_00039.png"):
        assert (again.parent / "images" / name).read_bytes() == (tiny.parent / "images" / name).read_bytes()
    other = generate_road_scenes(tmp_path / "b", n_images=40, image_size=32, extra_tasks=5, seed=8)
    assert other.read_bytes() != tiny.read_bytes()
    assert (other.parent / "images/scene_00000.png").read_bytes() != (
        tiny.parent / "images/scene_00000.png"
    ).read_bytes()


def test_images_do_not_depend_on_order_or_count() -> None:
    a, la = render_scene(image_rng(3, 5), 32, 4)
    b, lb = render_scene(image_rng(3, 5), 32, 4)
    assert np.array_equal(np.asarray(a), np.asarray(b)) and la == lb


def test_unknown_fraction_hides_only_train_and_val(tmp_path: Path) -> None:
    path = generate_road_scenes(
        tmp_path, n_images=60, image_size=16, extra_tasks=4, unknown_fraction=0.5, seed=1
    )
    names = list(TASKS) + extra_task_names(4)
    _, rows = _read(path)
    _, full = _read(path.parent / "labels_full.csv")
    assert [r["image"] for r in rows] == [r["image"] for r in full]
    trainval = [r[t] for r in rows if r["split"] != "test" for t in names]
    test = [r[t] for r in rows if r["split"] == "test" for t in names]
    assert abs(trainval.count("?") / len(trainval) - 0.5) < 0.01  # exact up to rounding
    assert "?" not in test and test
    for r, f in zip(rows, full, strict=True):
        assert r["split"] == f["split"]
        for t in names:
            assert f[t] in {"0", "1"}
            assert r[t] == "?" or r[t] == f[t]


def test_each_base_task_has_positives_and_negatives() -> None:
    counts = np.zeros((2, len(TASKS)), dtype=int)
    for i in range(200):
        _, labels = render_scene(image_rng(0, i), image_size=16)
        for j, t in enumerate(TASKS):
            counts[labels[t], j] += 1
    assert (counts >= 30).all(), counts


def test_attribute_tasks_imply_their_base_task() -> None:
    names = extra_task_names(max_extra_tasks())
    kind_of = {n: next(k for k in TASKS if k in n or n == f"two_{k}s") for n in names}
    seen = np.zeros(len(names), dtype=int)
    for i in range(60):
        image, objects = render_scene_objects(image_rng(11, i), 16)
        labels = scene_labels(objects, max_extra_tasks())
        for j, n in enumerate(names):
            if labels[n]:
                assert labels[kind_of[n]] == 1, (i, n)
                seen[j] += 1
        # brute force: the base label is "some object of the kind is at least 40 % visible"
        for k in TASKS:
            assert labels[k] == int(any(o.kind == k and o.visible >= 0.4 for o in objects))
    assert seen[:43].min() >= 1  # every single-attribute task fires at least once


def test_attribute_definitions_brute_force() -> None:
    objs = [
        SceneObject("car", (0.05, 0.5, 0.45, 0.8), "red", 0.9),  # left, bottom, large (0.3 >= 0.255)
        SceneObject("car", (0.6, 0.2, 0.9, 0.35), "blue", 0.9),  # right, top, small
        SceneObject("car", (0.6, 0.6, 0.9, 0.75), "red", 0.1),  # mostly hidden: does not count
        SceneObject("traffic_light", (0.7, 0.1, 0.8, 0.4), "green", 0.5),
    ]
    labels = scene_labels(objs, max_extra_tasks())
    expected = {
        "car": 1,
        "pedestrian": 0,
        "stop_sign": 0,
        "traffic_light": 1,
        "two_cars": 1,
        "car_red": 1,
        "car_red_left": 1,
        "car_red_right": 0,
        "car_blue_top": 1,
        "car_left_large": 1,
        "car_right_small": 1,
        "car_right_large": 0,
        "car_bottom_right": 0,
        "traffic_light_green": 1,
        "traffic_light_red": 0,
        "traffic_light_top_right": 1,
        "two_traffic_lights": 0,
        "car_white": 0,
    }
    for name, value in expected.items():
        assert labels[name] == value, name
    assert SIZE_RANGES["car"] == (0.15, 0.36)


def test_stop_sign_draws_red_inside_its_box() -> None:
    cv = Canvas(Image.new("RGB", (128, 128), (128, 128, 128)))
    cv.track, cv.current = True, 1
    draw_stop_sign(cv, np.random.default_rng(0), 40.0, 70.0, 20.0, 0.9)
    a = np.asarray(cv.image).astype(int)
    red = (a[..., 0] > 150) & (a[..., 1] < 80) & (a[..., 2] < 80)
    ys, xs = np.nonzero(red)
    assert red.sum() > 0.4 * np.pi * 20 * 20 * 0.9 * 0.6
    assert xs.min() >= 40 - 18 and xs.max() <= 40 + 18 and ys.min() >= 50 and ys.max() <= 90
    ids = np.asarray(cv.ids)
    assert ((ids == 1) | ~red).all()  # every red pixel belongs to the sign


def test_drawn_objects_are_where_and_what_labels_say() -> None:
    checked = {"stop_sign": 0, "car": 0, "traffic_light": 0}
    for i in range(160):
        image, objects = render_scene_objects(image_rng(5, i), 64)
        a = np.asarray(image).astype(int)
        for o in objects:
            if o.visible < 0.8 or o.kind == "pedestrian":
                continue
            x0, y0, x1, y1 = (round(v * 64) for v in o.bbox)
            crop = a[y0:y1, x0:x1]
            r, g, b = crop[..., 0], crop[..., 1], crop[..., 2]
            if o.kind == "stop_sign" or o.colour == "red" and o.kind == "car":
                assert ((r > g + 40) & (r > b + 40)).sum() >= 3, (i, o)
            elif o.kind == "traffic_light":
                want = {
                    "red": (r > g + 60) & (r > b + 60),
                    "green": (g > r + 60) & (g > b + 20),
                    "amber": (r > b + 80) & (g > b + 30),
                }[o.colour]
                assert want.sum() >= 1, (i, o)
            else:
                continue
            checked[o.kind] += 1
    assert min(checked.values()) >= 3, checked


def test_extra_task_names() -> None:
    assert extra_task_names(0) == []
    for n in (1, 7, 100, max_extra_tasks()):
        names = extra_task_names(n)
        assert len(names) == n == len(set(names))
        assert not set(names) & set(TASKS)
    assert max_extra_tasks() >= 100
    assert extra_task_names(10) == extra_task_names(50)[:10]
    with pytest.raises(ValueError, match=str(max_extra_tasks())):
        extra_task_names(max_extra_tasks() + 1)
    with pytest.raises(ValueError):
        render_scene(np.random.default_rng(0), 16, max_extra_tasks() + 1)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_road_scenes(tmp_path, n_images=0)
    with pytest.raises(ValueError):
        generate_road_scenes(tmp_path, n_images=5, val_fraction=0.6, test_fraction=0.6)
    with pytest.raises(ValueError):
        generate_road_scenes(tmp_path, n_images=5, unknown_fraction=1.5)
    with pytest.raises(ValueError):
        render_scene(np.random.default_rng(0), 16, presence={"bus": 0.5})


def test_presence_controls_content() -> None:
    for i in range(10):
        _, labels = render_scene(
            image_rng(2, i),
            16,
            presence={"car": 1.0, "pedestrian": 0.0, "stop_sign": 0.0, "traffic_light": 0.0},
        )
        assert labels["pedestrian"] == labels["stop_sign"] == labels["traffic_light"] == 0


def test_worker_processes_give_the_same_files(tmp_path: Path, tiny: Path) -> None:
    path = generate_road_scenes(tmp_path, n_images=40, image_size=32, extra_tasks=5, seed=7, workers=2)
    assert path.read_bytes() == tiny.read_bytes()
    for i in range(40):
        name = f"images/scene_{i:05d}.png"
        assert (path.parent / name).read_bytes() == (tiny.parent / name).read_bytes()


# ------------------------------------------------------------------------------------------- texture tasks


def test_texture_tasks_are_appended_and_default_output_unchanged(tmp_path: Path, tiny: Path) -> None:
    from multitask.data.generators import texture_task_names

    path = generate_road_scenes(tmp_path, n_images=20, image_size=32, extra_tasks=5, seed=7, texture_tasks=3)
    header, rows = _read(path)
    assert header == ["image", *TASKS, *extra_task_names(5), *texture_task_names(3), "split"]
    assert all(r[t] in {"0", "1"} for r in rows for t in texture_task_names(3))
    # without texture tasks: byte for byte what the generator always wrote
    again = generate_road_scenes(tmp_path / "plain", n_images=40, image_size=32, extra_tasks=5, seed=7,
                                 texture_tasks=0, texture_relatedness=0.7)
    assert again.read_bytes() == tiny.read_bytes()


def _grating_direction(patch: np.ndarray) -> float:
    """The direction (radians, mod π) of the strongest non-zero spatial frequency of a grey patch."""
    grey = patch.mean(axis=2) - patch.mean()
    spectrum = np.abs(np.fft.fft2(grey))
    spectrum[0, 0] = 0
    fy, fx = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    n = grey.shape[0]
    fy, fx = (fy if fy <= n // 2 else fy - n), (fx if fx <= n // 2 else fx - n)
    return float(np.arctan2(fy, fx) % np.pi)


def test_texture_labels_are_truthful() -> None:
    """Every counted disc of direction i is drawn where its box says, with stripes along direction i; the labels
    are the threshold functions of the visible directions, brute force."""
    from multitask.data.generators import texture_directions, texture_labels, texture_weights

    k = 4
    directions = texture_directions(k)
    checked = 0
    for i in range(40):
        for r in (0.0, 0.5, 1.0):
            _, labels = render_scene(image_rng(9, i), 64, texture_tasks=k, texture_relatedness=r)
            image, objects = render_scene_objects(image_rng(9, i), 64, texture_tasks=k)
            visible = [any(o.kind == f"grating_{d}" and o.visible >= 0.4 for o in objects) for d in range(k)]
            s = np.where(visible, 1.0, -1.0)
            expected = (texture_weights(k, r) @ s > 0).astype(int)
            got = [labels[f"texture_{t}"] for t in range(k)]
            assert got == expected.tolist() == texture_labels(visible, r).tolist()
            if r == 0.0:  # r = 0: task t is "a disc of direction t is visible"
                assert [labels[f"texture_{t}"] for t in range(k)] == [int(v) for v in visible]
        a = np.asarray(image).astype(float)
        for o in objects:
            if o.kind.startswith("grating_") and o.visible > 0.95:
                x0, y0, x1, y1 = (int(round(v * 64)) for v in o.bbox)
                side = (x1 - x0) // 2
                cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
                half = max(3, int(side * 0.6))
                patch = a[cy - half:cy + half, cx - half:cx + half]
                if patch.shape[0] != patch.shape[1] or patch.shape[0] < 8:
                    continue
                found = _grating_direction(patch)
                want = directions[int(o.kind.split("_")[1])] % np.pi
                error = abs((found - want + np.pi / 2) % np.pi - np.pi / 2)
                assert error < np.radians(25), (i, o, np.degrees(found), np.degrees(want))
                checked += 1
    assert checked >= 20


def test_texture_relatedness_changes_labels_not_images(tmp_path: Path) -> None:
    a = generate_road_scenes(tmp_path / "r0", n_images=60, image_size=32, seed=5, texture_tasks=6,
                             texture_relatedness=0.0)
    b = generate_road_scenes(tmp_path / "r1", n_images=60, image_size=32, seed=5, texture_tasks=6,
                             texture_relatedness=1.0)
    for name in ("scene_00000.png", "scene_00031.png"):
        assert (a.parent / "images" / name).read_bytes() == (b.parent / "images" / name).read_bytes()
    _, rows_a = _read(a)
    _, rows_b = _read(b)
    names = [f"texture_{k}" for k in range(6)]
    ya = np.array([[int(r[t]) for t in names] for r in rows_a])
    yb = np.array([[int(r[t]) for t in names] for r in rows_b])
    assert (ya != yb).any()  # the knob changes which features decide each task
    assert 0.2 < yb.mean() < 0.8 and 0.2 < ya.mean() < 0.8
    # determinism: the same call gives the same bytes
    again = generate_road_scenes(tmp_path / "r1b", n_images=60, image_size=32, seed=5, texture_tasks=6,
                                 texture_relatedness=1.0)
    assert again.read_bytes() == b.read_bytes()


def test_texture_discs_leave_the_rest_of_the_scene_alone() -> None:
    plain, _ = render_scene_objects(image_rng(4, 2), 32)
    with_discs, objects = render_scene_objects(image_rng(4, 2), 32, texture_tasks=5)
    a, b = np.asarray(plain).astype(int), np.asarray(with_discs).astype(int)
    assert (a != b).any()
    covered = np.zeros((32, 32), dtype=bool)  # the discs' boxes (distractors too: unknown boxes, so compare far
    for o in objects:                           # from any disc only where no disc is drawn at all)
        if o.kind.startswith("grating_"):
            x0, y0, x1, y1 = (int(round(v * 32)) for v in o.bbox)
            covered[max(0, y0 - 1):y1 + 1, max(0, x0 - 1):x1 + 1] = True
    same = (a == b).all(axis=2)
    assert same[~covered].mean() > 0.5  # outside the discs the pixels are unchanged (distractor discs aside)


def test_texture_weights_design() -> None:
    from multitask.data.generators import texture_weights

    for k in (2, 5, 8):
        w0, w1 = texture_weights(k, 0.0), texture_weights(k, 1.0)
        assert np.allclose(w0, np.eye(k) * w0[0, 0])  # r = 0: own direction only
        assert (np.abs(w1) > 1e-3).all()  # r = 1: every task depends on every direction
        v = w1 - np.eye(k) * 1e-3
        assert np.allclose(v.sum(axis=1), 0, atol=1e-9)  # zero-sum votes: balanced labels
        cos = (v @ v.T)[~np.eye(k, dtype=bool)]
        assert np.allclose(cos, -1 / (k - 1), atol=1e-9)
    with pytest.raises(ValueError):
        texture_weights(3, 1.5)
    with pytest.raises(ValueError):
        render_scene(np.random.default_rng(0), 16, texture_tasks=-1)


# Digests of the files written by the generator before it was split into multitask.data.generators (captured
# from the 1,350-line multitask/data/roadscenes.py): the same seed must keep giving byte-identical data sets.
KNOWN_DIGESTS = {
    "base": ({"n_images": 12, "image_size": 24, "seed": 3, "extra_tasks": 30, "unknown_fraction": 0.2},
             "2f0cbf20dd5da3032a5751330d3e88a7767b386fe600f7349cebc958755dbc8b"),
    "textures": ({"n_images": 12, "image_size": 32, "seed": 5, "texture_tasks": 6, "texture_relatedness": 0.5,
                  "extra_tasks": 4}, "2966d9aceacd962d2bd8d9ae68bde60a594707594e0573aaa40eca879bdea8e6"),
    "dense": ({"n_images": 8, "image_size": 20, "seed": 7, "presence": 0.9, "max_instances": 3, "min_visible": 0.3},
              "9742e7b0f0d8ee36703627c30440019d46458f433bb2f6129a830ed4ee1ae6a6"),
}


@pytest.mark.parametrize("case", sorted(KNOWN_DIGESTS))
def test_same_seed_same_files_as_before_the_split(case: str, tmp_path: Path) -> None:
    import hashlib

    options, expected = KNOWN_DIGESTS[case]
    generate_road_scenes(tmp_path, **options)
    digest = hashlib.sha256()
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith("boxes")):
        digest.update(str(path.relative_to(tmp_path)).encode())  # the images and labels; boxes came later
        digest.update(path.read_bytes())
    assert digest.hexdigest() == expected


# ------------------------------------------------------------------------------------------ boxes


def test_boxes_match_the_labels_split_and_hidden_cells(tmp_path: Path) -> None:
    from multitask.detection import read_box_table

    path = generate_road_scenes(tmp_path, n_images=60, image_size=64, unknown_fraction=0.3, seed=2, extra_tasks=2)
    full = read_box_table(path.parent / "boxes_full.csv")  # checks every image file and its size (64 px)
    part = read_box_table(path.parent / "boxes.csv", check_files=False)
    _, rows = _read(path.parent / "labels_full.csv")
    _, hidden_rows = _read(path)
    assert full.classes == tuple(sorted(TASKS)) and full.images == tuple(r["image"] for r in rows)
    assert full.split.tolist() == [r["split"] for r in rows] == part.split.tolist()
    assert (full.sizes == 64).all() and full.known.all()
    for i, row in enumerate(rows):
        counted = {full.classes[k] for k in full.labels[i][~full.ignore[i]]}
        assert counted == {t for t in TASKS if row[t] == "1"}  # a label is 1 exactly when a counted box exists
        assert ((full.boxes[i] >= 0) & (full.boxes[i] <= 64)).all()
        for k, name in enumerate(part.classes):
            assert part.known[i, k] == (hidden_rows[i][name] != "?")
            mine = part.boxes[i][part.labels[i] == k]
            theirs = full.boxes[i][full.labels[i] == k]
            assert mine.shape == (0, 4) if not part.known[i, k] else np.array_equal(mine, theirs)
    assert not part.known.all() and full.n_boxes > part.n_boxes > 0


def test_scene_boxes_follow_visibility() -> None:
    from multitask.data.generators.writer import scene_boxes

    objects = [SceneObject("car", (0.5, 0.5, 1.0, 0.75), "red", 0.39), SceneObject("car", (0, 0, 0.5, 0.5), "red", 0.0),
               SceneObject("grating_0", (0, 0, 0.5, 0.5), None, 1.0)]
    assert scene_boxes(objects, 16, min_visible=0.4) == [(TASKS.index("car"), 8.0, 8.0, 16.0, 12.0, True)]
