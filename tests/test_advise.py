"""The advisor: label statistics against hand computation and numpy, relatedness on constructed tasks, the
decision rules, and the written output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from multitask.advise import (
    CALL_GROUPS,
    CALL_SEPARATE,
    CALL_SHARED,
    CALL_TRANSFER,
    advise,
    label_correlation,
    suggest_groups,
    task_counts,
)
from multitask.advise.probe import choose_probe_rows, split_held_out
from multitask.advise.rules import CONFLICT_THRESHOLD, capacity_flag, decide, trunk_too_small
from multitask.config import build_config
from multitask.tables import label_table_from_arrays

PROBE = {"probe_steps": 120, "threads": 1, "evidence": False}
"""The probe and the rules alone: these tests construct what the rules read (the evidence is tested below)."""


def mlp_config(tmp_path: Path, **train: object):
    return build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [32]}},
                         "train": {"progress": False, **train}, "root": str(tmp_path)})


def features(n: int = 600, d: int = 12, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


# ------------------------------------------------------------------------------------------- label statistics


def test_task_counts_and_ratios_by_hand() -> None:
    nan = np.nan
    y = np.array([[1, 0, nan], [0, nan, nan], [1, 1, 1], [nan, 1, 0], [1, 1, 1], [0, 0, 0]])
    split = ["train", "train", "train", "train", "val", "test"]
    table = label_table_from_arrays(np.zeros((6, 2)), y, split=split, tasks=["a", "b", "c"])
    counts = {c["task"]: c for c in task_counts(table)}
    # training rows 0-3: a known 3 (2 positive), b known 3 (2 positive), c known 2 (1 positive)
    assert [counts[t]["known"] for t in "abc"] == [3, 3, 2]
    assert [counts[t]["positives"] for t in "abc"] == [2, 2, 1]
    assert counts["c"]["unknown_fraction"] == pytest.approx(0.5)
    assert [counts[t]["others_known"] for t in "abc"] == [5, 5, 6]
    assert counts["a"]["ratio"] == pytest.approx(5 / 3)
    assert counts["c"]["ratio"] == pytest.approx(3.0)
    # rows where the task is unknown but another is known: a -> row 3; b -> row 1; c -> rows 0, 1
    assert [counts[t]["extra_rows"] for t in "abc"] == [1, 1, 2]
    assert "little_help" in counts["a"]["flags"] and "little_help" not in counts["c"]["flags"]


def test_largest_and_untrainable_flags() -> None:
    y = np.full((40, 3), np.nan)
    y[:, 0] = np.arange(40) % 2
    y[:10, 1] = np.arange(10) % 2
    y[:5, 2] = 1
    counts = {c["task"]: c for c in task_counts(label_table_from_arrays(np.zeros((40, 1)), y))}
    assert "largest" in counts["task_0"]["flags"]
    assert counts["task_2"]["flags"] == ["one_class"]  # 5 labels, all positive; the others have 10x as many
    assert counts["task_0"]["ratio"] == pytest.approx(15 / 40) and "little_help" in counts["task_0"]["flags"]


def test_label_correlation_matches_numpy_on_co_labelled_rows() -> None:
    rng = np.random.default_rng(0)
    n = 200
    base = rng.random(n) < 0.4
    y = np.stack([base, base ^ (rng.random(n) < 0.2), rng.random(n) < 0.5, ~base], axis=1).astype(float)
    y[rng.random(y.shape) < 0.35] = np.nan
    y[25:, 3] = np.nan  # task 3: 25 rows at most -> about 10 co-labelled with the others, NaN for some pairs
    known = ~np.isnan(y)
    phi, co, both = label_correlation(np.nan_to_num(y), known)
    for i in range(4):
        for j in range(4):
            rows = known[:, i] & known[:, j]
            assert co[i, j] == rows.sum()
            assert both[i, j] == ((y[rows, i] == 1) & (y[rows, j] == 1)).sum()
            a, b = y[rows, i], y[rows, j]
            if rows.sum() < 10 or a.std() == 0 or b.std() == 0:
                assert math.isnan(phi[i, j])
            else:
                assert phi[i, j] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-9)
    assert phi[0, 1] > 0.4 and phi[0, 3] == pytest.approx(-1.0)


def test_probe_rows_keep_every_task() -> None:
    known = np.zeros((5000, 3), dtype=bool)
    known[:, 0] = True
    known[::500, 1] = True  # 10 rows
    known[7, 2] = True
    rows = choose_probe_rows(known, 300, seed=0)
    assert len(rows) == 300 and len(np.unique(rows)) == 300
    assert known[rows, 1].sum() == 10 and known[rows, 2].sum() == 1


# ------------------------------------------------------------------------------------------- rules (no training)


def test_groups_cluster_and_attach() -> None:
    r = np.array([[1, .9, .05, 0], [.9, 1, 0, .1], [.05, 0, 1, 0], [0, .1, 0, 1]])
    assert suggest_groups(r) == [[0, 1], [2], [3]]
    r[2, 0] = r[0, 2] = 0.35  # related to one member only: joins that group
    assert suggest_groups(r) == [[0, 1, 2], [3]]
    assert suggest_groups(np.full((3, 3), np.nan)) == [[0], [1], [2]]


def test_decide_rules_by_hand() -> None:
    tasks = ["a", "b", "c"]
    related = np.array([[1, .8, .7], [.8, 1, .75], [.7, .75, 1]])
    call, _, per_task = decide(tasks, [1000, 1000, 1000], related, [[0, 1, 2]], {}, "test")
    assert call == CALL_SHARED and {a.call for a in per_task} == {CALL_SHARED}
    # independent tasks (relatedness ≈ 0): no measurable help or harm, so they share for cost
    independent = np.array([[1, .05, -.05], [.05, 1, 0], [-.05, 0, 1]])
    groups = suggest_groups(independent, CONFLICT_THRESHOLD)
    assert groups == [[0, 1, 2]]
    call, _, per_task = decide(tasks, [1000, 1000, 1000], independent, groups, {}, "test")
    assert call == CALL_SHARED and {a.call for a in per_task} == {CALL_SHARED}
    assert "independent" in per_task[0].reasons[0]
    # conflicting tasks (negative relatedness): separate networks
    conflict = np.array([[1, -.5, -.6], [-.5, 1, -.4], [-.6, -.4, 1]])
    groups = suggest_groups(conflict, CONFLICT_THRESHOLD)
    assert groups == [[0], [1], [2]]
    call, _, per_task = decide(tasks, [1000, 1000, 1000], conflict, groups, {}, "test")
    assert call == CALL_SEPARATE and {a.call for a in per_task} == {CALL_SEPARATE}
    assert "conflicts" in per_task[0].reasons[0]
    # a and b related, c in conflict with both: a and b share, c alone
    mixed = np.array([[1, .6, -.5], [.6, 1, -.5], [-.5, -.5, 1]])
    groups = suggest_groups(mixed, CONFLICT_THRESHOLD)
    call, _, per_task = decide(tasks, [1000, 1000, 1000], mixed, groups, {}, "test")
    assert call == CALL_GROUPS and [a.call for a in per_task] == [CALL_GROUPS, CALL_GROUPS, CALL_SEPARATE]
    # c alone is flagged by the capacity check: weak evidence, it keeps sharing with a warning
    flagged = {2: {"flagged": True, "shared_loss": .5, "own_loss": .2, "shared_explained": .2,
                   "own_explained": .7, "baseline_loss": .69}}
    call, reasons, per_task = decide(tasks, [1000, 1000, 1000], related, [[0, 1, 2]], flagged, "test")
    assert call == CALL_SHARED and {a.call for a in per_task} == {CALL_SHARED}
    assert any(r.startswith("warning: the capacity check flags it") for r in per_task[2].reasons)
    assert any("too few to call the trunk too small" in r for r in reasons)
    # too few features per task in the shared representation: separate networks (or a bigger trunk)
    call, reasons, per_task = decide(tasks, [1000, 1000, 1000], related, [[0, 1, 2]], {}, "test", width=23)
    assert call == CALL_SEPARATE and {a.call for a in per_task} == {CALL_SEPARATE}
    assert "23 features for 3 tasks" in reasons[0] and "at least 24 features" in reasons[0]
    call, _, _ = decide(tasks, [1000, 1000, 1000], related, [[0, 1, 2]], {}, "test", width=24)
    assert call == CALL_SHARED
    # most of the checked tasks flagged: the trunk is too small for all of them
    flags = {t: {"flagged": True, "shared_loss": .5, "own_loss": .2, "shared_explained": .2, "own_explained": .7,
                 "baseline_loss": .69, "held_shared_ap": .5, "held_own_ap": .8} for t in (0, 1)}
    flags[2] = {"flagged": False}
    call, reasons, per_task = decide(tasks, [1000, 1000, 1000], related, [[0, 1, 2]], flags, "test")
    assert call == CALL_SEPARATE and {a.call for a in per_task} == {CALL_SEPARATE}
    assert "too small" in reasons[0] and "0.80 against 0.50" in per_task[0].reasons[0]
    # tiny b, strongly related to a: learnt together with a (one network), transfer named as the alternative
    related2 = np.array([[1, .8], [.8, 1]])
    call, _, per_task = decide(["a", "b"], [2000, 40], related2, [[0, 1]], {}, "test")
    assert call == CALL_SHARED and "transfer" in per_task[1].reasons[1]
    # ... but when the shared network fits b clearly worse: b's own network, started from a's (transfer)
    flag_b = {1: {"flagged": True, "shared_loss": .6, "own_loss": .2, "shared_explained": .1, "own_explained": .7,
                  "baseline_loss": .69}}
    call, _, per_task = decide(["a", "b"], [2000, 40], related2, [[0, 1]], flag_b, "test")
    assert call == CALL_TRANSFER and per_task[1].source == "a" and per_task[0].call == CALL_SEPARATE
    # a flagged task without a strongly related, much larger task keeps sharing (one flag is weak evidence)
    call, _, per_task = decide(["a", "b"], [2000, 1000], related2, [[0, 1]], flag_b, "test")
    assert per_task[1].call == CALL_SHARED and per_task[1].source is None


def test_capacity_flag() -> None:
    assert capacity_flag(0.3, 0.8) and not capacity_flag(0.7, 0.8)
    assert not capacity_flag(float("nan"), 0.8)
    assert not capacity_flag(0.55, 0.8)  # a gap of 0.25: within what slower joint training alone explains
    # a training-fit gap must also show on held-out rows
    assert capacity_flag(0.3, 0.8, held_shared_ap=0.5, held_own_ap=0.7)
    assert not capacity_flag(0.3, 0.8, held_shared_ap=0.6, held_own_ap=0.65)
    assert trunk_too_small({0: {"flagged": True}, 1: {"flagged": True}, 2: {}, 3: {}}) == (True, 2, 4)
    assert trunk_too_small({0: {"flagged": True}, 1: {}, 2: {}}) == (False, 1, 3)
    assert trunk_too_small({0: {"flagged": True}, 1: {"held_inconclusive": "1 positive"}}) == (False, 1, 1)


def test_held_out_rows_are_disjoint_and_seeded() -> None:
    known = np.ones((400, 3), dtype=bool)
    rows = np.arange(0, 800, 2)
    fit, held = split_held_out(known, rows, 0.25, 512, seed=3)
    assert len(held) == 100 and len(fit) == 300 and not set(fit) & set(held)
    assert sorted(np.concatenate([fit, held]).tolist()) == rows.tolist()
    again = split_held_out(known, rows, 0.25, 512, seed=3)
    assert np.array_equal(again[1], held)
    assert len(split_held_out(known, rows, 0.25, 40, seed=3)[1]) == 40


# ------------------------------------------------------------------------------------------- probe and calls


def test_related_and_negated_tasks_are_related_and_all_share(tmp_path: Path) -> None:
    """a and not_a are the same function of x (one negated): related; c uses disjoint features: independent.
    Nothing conflicts, so all three share one network (a and not_a for the features, c for cost)."""
    x = features(seed=0)
    a = (x[:, 0] + x[:, 1] > 0).astype(float)
    y = np.stack([a, 1 - a, (x[:, 6] - x[:, 7] > 0).astype(float)], axis=1)
    y[np.random.default_rng(0).random(y.shape) < 0.3] = np.nan
    table = label_table_from_arrays(x, y, tasks=["a", "not_a", "c"])
    advice = advise(mlp_config(tmp_path), table, capacity_check=False, **PROBE)
    r = advice.gradient_cosine
    assert r[0, 1] > 0.6, r
    assert abs(r[0, 2]) < 0.2 and abs(r[1, 2]) < 0.2, r
    assert r[0, 1] > max(r[0, 2], r[1, 2]) + 0.5
    assert advice.tag_affinity is not None and advice.tag_affinity[0, 1] > advice.tag_affinity[0, 2]
    assert sorted(map(sorted, advice.groups)) == [["a", "c", "not_a"]]
    assert advice.groups_option() == "a,not_a,c" and "groups" not in advice.compare_command()
    assert advice.recommendation == CALL_SHARED
    assert advice.call("a") == advice.call("not_a") == advice.call("c") == CALL_SHARED
    assert "related to not_a" in advice.task_advice[0].reasons[0]
    assert "independent" in advice.task_advice[2].reasons[0]
    assert advice.correlation[0, 1] < -0.9  # labels anti-correlated, features shared
    # the groups of related tasks alone (the threshold the rules report against) still separate c
    related_groups = [[advice.tasks[i] for i in g] for g in suggest_groups(advice.relatedness)]
    assert sorted(map(sorted, related_groups)) == [["a", "not_a"], ["c"]]


def test_independent_tasks_share_one_network_for_cost(tmp_path: Path) -> None:
    """Three tasks on disjoint features: relatedness ≈ 0 (no help, no harm), a wide enough trunk: one network."""
    x = features()
    y = np.stack([x[:, 0] + x[:, 1] > 0, x[:, 4] - x[:, 5] > 0, x[:, 8] + x[:, 9] > 0], axis=1).astype(float)
    advice = advise(mlp_config(tmp_path), label_table_from_arrays(x, y), capacity_check=True, **PROBE)
    assert np.nanmax(np.abs(advice.relatedness - np.eye(3))) < RELATED
    assert advice.recommendation == CALL_SHARED, advice.reasons
    assert all(a.call == CALL_SHARED for a in advice.task_advice)
    assert all("independent" in a.reasons[0] for a in advice.task_advice)
    # the capacity check ran for every task, with both networks trained the same number of epochs, and
    # measured both on held-out probe rows that neither network was trained on
    assert [c["task"] for c in advice.capacity] == list(advice.tasks)
    for c in advice.capacity:
        assert c["own_steps"] == c["planned_steps"] > 0 and not c.get("skipped")
        assert math.isfinite(c["own_loss"]) and math.isfinite(c["shared_loss"])
        assert c["baseline_loss"] == pytest.approx(-np.log(0.5), abs=0.03)
        assert c["held_rows"] == 150 and math.isfinite(c["held_own_ap"]) and math.isfinite(c["held_shared_ap"])
        assert not c["flagged"]
    assert advice.probe["rows"] == 450  # 600 rows, a quarter held out
    narrow = advise(build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [16]}},
                                  "train": {"progress": False}, "root": str(tmp_path)}),
                    label_table_from_arrays(x, y), probe_steps=20, evidence=False, threads=1)
    assert narrow.representation_width == 16 and narrow.recommendation == CALL_SEPARATE
    assert "16 features for 3 tasks" in narrow.reasons[0]


def test_conflicting_tasks_get_separate_networks() -> None:
    """Without a probe, relatedness is |phi|; the conflict rule is exercised by hand in test_decide_rules_by_hand.
    Here: a relatedness matrix with a conflicting pair splits the groups at CONFLICT_THRESHOLD."""
    r = np.array([[1, .1, -.6], [.1, 1, -.5], [-.6, -.5, 1]])
    assert suggest_groups(r, CONFLICT_THRESHOLD) == [[0, 1], [2]]


RELATED = 0.3


def test_related_tasks_and_a_small_one_get_one_shared_network(tmp_path: Path) -> None:
    x = features()
    f = x[:, 0] + x[:, 1]
    y = np.stack([f > 0, f + 0.5 * x[:, 2] > 0, f - 0.5 * x[:, 3] > 0, f + 0.3 * x[:, 2] > 0], axis=1).astype(float)
    y[30:, 3] = np.nan  # b: 30 labels, the others 600 each
    advice = advise(mlp_config(tmp_path), label_table_from_arrays(x, y, tasks=["a1", "a2", "a3", "b"]),
                    capacity_check=False, **PROBE)
    assert advice.recommendation == CALL_SHARED, advice.reasons
    assert advice.groups == [["a1", "a2", "a3", "b"]]
    assert advice.call("b") == CALL_SHARED  # several related tasks help b, not one: it shares (rule e)
    assert {c["task"]: c["ratio"] for c in advice.counts}["b"] == pytest.approx(60.0)


def test_tiny_task_related_to_one_large_task_shares_with_it(tmp_path: Path) -> None:
    x = features()
    f = x[:, 0] + x[:, 1]
    y = np.stack([f > 0, f + 0.1 * x[:, 2] > 0], axis=1).astype(float)
    y[40:, 1] = np.nan  # B: 40 labels, A: 600
    advice = advise(mlp_config(tmp_path), label_table_from_arrays(x, y, tasks=["A", "B"]), capacity_check=False,
                    **PROBE)
    assert advice.relatedness[0, 1] >= 0.5
    b = advice.task_advice[1]
    assert advice.recommendation == CALL_SHARED and b.call == CALL_SHARED
    assert "related to A" in b.reasons[0] and any("transfer" in r for r in b.reasons)


def test_without_probe_relatedness_is_label_correlation(tmp_path: Path) -> None:
    x = features(n=300)
    a = (x[:, 0] > 0).astype(float)
    y = np.stack([a, a, (x[:, 5] > 0).astype(float)], axis=1)
    advice = advise(mlp_config(tmp_path), label_table_from_arrays(x, y), probe_steps=0, evidence=False)
    assert advice.probe == {} and advice.capacity == [] and advice.gradient_cosine is None
    assert advice.relatedness_source.startswith("label correlation")
    np.testing.assert_allclose(advice.relatedness[0, 1], 1.0)
    assert advice.relatedness[0, 2] < 0.2
    # |phi| is never negative, so it cannot show a conflict: every task shares
    assert advice.groups == [["task_0", "task_1", "task_2"]] and advice.recommendation == CALL_SHARED
    assert [[advice.tasks[i] for i in g] for g in suggest_groups(advice.relatedness)] == \
        [["task_0", "task_1"], ["task_2"]]


# ------------------------------------------------------------------------------------------- output


def test_write_json_markdown_plots_and_tables(tmp_path: Path) -> None:
    from rich.console import Console

    x = features(n=240)
    y = np.stack([x[:, 0] > 0, x[:, 0] + 0.2 * x[:, 1] > 0, x[:, 6] > 0], axis=1).astype(float)
    y[np.random.default_rng(2).random(y.shape) < 0.3] = np.nan
    y[:, 2][50:] = np.nan
    split = np.where(np.arange(240) < 200, "train", "val")
    table = label_table_from_arrays(x, y, split=split, tasks=["left", "left_too", "other"])
    out = tmp_path / "advice"
    advice = advise(mlp_config(tmp_path), table, probe_steps=40, capacity_seconds=10.0, threads=1, out_dir=out)
    for name in ("advice.json", "report.md", "plots/relatedness.png", "plots/cooccurrence.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    data = json.loads((out / "advice.json").read_text())
    assert data["recommendation"] == advice.recommendation and data["tasks"] == ["left", "left_too", "other"]
    json.dumps(advice.to_dict(), allow_nan=False)  # NaN already converted to None
    assert data["n_train"] == 200 and len(data["relatedness"]) == 3
    report = (out / "report.md").read_text()
    assert advice.recommendation in report and "plots/relatedness.png" in report
    console = Console(record=True, width=200)
    for t in advice.rich_tables():
        console.print(t)
    assert "left_too" in console.export_text()


def test_image_table_probe(tiny_scenes: Path, tmp_path: Path) -> None:
    config = build_config({"data": {"path": str(tiny_scenes), "image_size": 32},
                           "model": {"trunk_options": {"width": 8, "depth": 2}},
                           "train": {"progress": False}, "root": str(tmp_path)})
    advice = advise(config, probe_steps=12, capacity_tasks=1, capacity_seconds=10.0, threads=1)
    assert advice.probe["steps"] == 12 and advice.probe["image_size"] == 32
    assert not any("features for" in n for n in advice.notes)  # 64 features, 4 tasks
    assert advice.relatedness.shape == (len(advice.tasks),) * 2
    assert advice.recommendation in {CALL_SHARED, CALL_GROUPS, CALL_SEPARATE, CALL_TRANSFER}


def test_second_moment_is_adamw_s_own_estimate() -> None:
    """The lookahead's step scale comes from the probe's own running second moment, which must equal what AdamW
    keeps internally (read here, in the test only, as the reference)."""
    import torch

    from multitask.advise.probe import ADAM_BETAS, ADAM_EPS, SecondMoment

    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3)
    extra = torch.nn.Parameter(torch.ones(2))  # never gets a gradient: scale 0, it would not move
    optimizer = torch.optim.AdamW([*layer.parameters(), extra], lr=0.01, betas=ADAM_BETAS, eps=ADAM_EPS)
    moment = SecondMoment([*layer.parameters(), extra], lr=0.01)
    for _ in range(5):
        optimizer.zero_grad(set_to_none=True)
        layer(torch.randn(8, 4)).pow(2).mean().backward()
        moment.update()
        optimizer.step()
    for p, scale in zip([*layer.parameters(), extra], moment.scales(), strict=True):
        state = optimizer.state.get(p, {})
        if "exp_avg_sq" not in state:
            assert torch.equal(scale, torch.zeros_like(p))
            continue
        v_hat = state["exp_avg_sq"] / (1 - ADAM_BETAS[1] ** float(state["step"]))
        torch.testing.assert_close(scale, 0.01 / (v_hat.sqrt() + ADAM_EPS), rtol=0, atol=0)


# ------------------------------------------------------------------------------------------- resume


def _resume_table():
    x = features(n=300)
    y = np.stack([x[:, 0] > 0, x[:, 0] + 0.3 * x[:, 1] > 0, x[:, 6] > 0], axis=1).astype(float)
    return label_table_from_arrays(x, y, tasks=["a", "b", "c"])


RESUME = {"probe_steps": 30, "capacity_check": True, "evidence_epochs": 2, "threads": 1}


def _without_time(path: Path) -> dict:
    data = json.loads(path.read_text())
    data.pop("seconds")  # the advice's own computing time
    return data


def test_resume_computes_only_missing_parts_and_gives_the_same_advice(tmp_path: Path, monkeypatch) -> None:
    from multitask.advise import probe

    out = tmp_path / "advice"
    config, table = mlp_config(tmp_path), _resume_table()
    advise(config, table, out_dir=out, **RESUME)
    parts = sorted(p.name for p in (out / "partial" / "capacity").iterdir())
    assert parts == ["0000_a.json", "0001_b.json", "0002_c.json"] and (out / "partial" / "probe.json").is_file()
    full = _without_time(out / "advice.json")
    (out / "partial" / "capacity" / "0001_b.json").unlink()
    (out / "advice.json").unlink()

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("the probe was run again")

    from multitask.advise import evidence

    assert (out / "partial" / "evidence.json").is_file()
    monkeypatch.setattr(probe, "run_probe", fail)
    monkeypatch.setattr(evidence, "measure_evidence", fail)
    advise(config, table, out_dir=out, resume=True, **RESUME)
    assert _without_time(out / "advice.json") == full
    assert (out / "partial" / "capacity" / "0001_b.json").is_file()
    # with every part saved, nothing is trained: not even the capacity check
    with monkeypatch.context() as patch:
        patch.setattr(probe, "capacity_check", fail)
        advise(config, table, out_dir=out, resume=True, **RESUME)
    assert _without_time(out / "advice.json") == full
    monkeypatch.undo()
    # an interrupted probe runs again: the same measurements (its timings aside)
    (out / "partial" / "probe.json").unlink()
    advise(config, table, out_dir=out, resume=True, **RESUME)
    again = _without_time(out / "advice.json")
    for advice in (again, full):
        advice["probe"].pop("seconds"), advice["probe"].pop("seconds_per_step")
    assert again == full


def test_resume_with_other_inputs_is_refused(tmp_path: Path) -> None:
    from multitask.errors import ConfigError, RunDirError

    out = tmp_path / "advice"
    config, table = mlp_config(tmp_path), _resume_table()
    with pytest.raises(RunDirError, match="partial/inputs.json: missing"):
        advise(config, table, out_dir=out, resume=True, **RESUME)
    advise(config, table, out_dir=out, **{**RESUME, "capacity_check": False})
    with pytest.raises(ConfigError, match=r"probe_steps: 30 \(saved\) → 31 \(now\)"):
        advise(config, table, out_dir=out, resume=True, **{**RESUME, "capacity_check": False, "probe_steps": 31})
    with pytest.raises(ConfigError, match=r"config\.train\.lr"):
        advise(mlp_config(tmp_path, lr=0.05), table, out_dir=out, resume=True, **{**RESUME, "capacity_check": False})
    other = label_table_from_arrays(table.features + 1, np.where(table.known, table.targets, np.nan),
                                    tasks=list(table.tasks))
    with pytest.raises(ConfigError, match=r"data\.table_sha256"):
        advise(config, other, out_dir=out, resume=True, **{**RESUME, "capacity_check": False})


# ------------------------------------------------------------------------------------------- the evidence


def _stable(value: object) -> object:
    """An advice dict without its timings (the only values a rerun may change)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in ("seconds", "seconds_per_step")}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def test_evidence_budget_is_counted_in_epochs_and_steps() -> None:
    """Each network trains ceil(epochs × rows_per_epoch) steps whatever the clock; scored on the same tasks."""
    from multitask.advise.evidence import measure_evidence

    x = features(n=400)
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0, x[:, 2] > 0], axis=1).astype(float)
    y[:100, 2] = np.nan  # task 2 known on 300 of the 400 rows
    train = label_table_from_arrays(x, y, split=np.array(["train"] * 400))
    config = build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}},
                           "train": {"epochs": 10, "batch_size": 50}})
    evidence = measure_evidence(config, train, np.arange(200), np.arange(200, 400), image_size=None, seed=0)
    assert evidence.epochs == 5.0 and evidence.checkpoints == [2.5, 5.0]
    shared, separate = evidence.approaches["shared"], evidence.approaches["separate"]
    assert shared.steps == 5 * (200 // 50) and shared.networks == 1
    # tasks 0 and 1: 200 fit rows → 4 steps per epoch; task 2: 100 fit rows → 2 steps per epoch
    assert separate.steps == 5 * 4 + 5 * 4 + 5 * 2 and separate.networks == 3
    assert evidence.tasks == ["task_0", "task_1", "task_2"]
    assert all(len(v) == 2 for a in (shared, separate) for v in a.ap.values())
    assert len(evidence.differences["separate"]) == 2


def test_same_data_and_seed_give_the_same_advice(tmp_path: Path) -> None:
    x = features(n=400)
    y = np.stack([x[:, 0] + x[:, 1] > 0, x[:, 0] - x[:, 2] > 0, x[:, 5] > 0], axis=1).astype(float)
    table = label_table_from_arrays(x, y)
    first = advise(mlp_config(tmp_path, epochs=10), table, probe_steps=40, threads=1)
    second = advise(mlp_config(tmp_path, epochs=10), table, probe_steps=40, threads=1)
    assert first.evidence is not None and first.confidence in ("clear", "tie")
    assert _stable(first.to_dict()) == _stable(second.to_dict())
    assert first.probe["steps"] == 40 and not first.probe["stopped_by_time"]  # a step budget, no clock


def test_evidence_calls_separate_when_the_shared_trunk_is_far_too_narrow(tmp_path: Path) -> None:
    """Six tasks on six different feature pairs through a 2-unit trunk: one network cannot serve them all, each
    task's own 2-unit network can. The evidence says so clearly, whatever the rules read."""
    x = features(n=1600, d=12, seed=3)
    y = np.stack([x[:, 2 * j] + x[:, 2 * j + 1] > 0 for j in range(6)], axis=1).astype(float)
    config = build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [2]}, "select": "off"},
                           "train": {"progress": False, "epochs": 40, "batch_size": 32, "lr": 0.01},
                           "root": str(tmp_path)})
    advice = advise(config, label_table_from_arrays(x, y), probe_steps=20, threads=1)
    assert advice.recommendation == CALL_SEPARATE and advice.confidence == "clear", advice.reasons
    assert advice.evidence["differences"]["separate"][-1]["low"] > 0
    assert advice.reasons[0].startswith("separate networks, clearly")
    assert "linear" not in advice.evidence  # select off: no linear candidate


def test_evidence_reports_the_linear_candidate_of_select_auto(tmp_path: Path) -> None:
    """The same linear tasks with model.select auto (the default): the evidence also fits the linear model train
    and compare would weigh against each MLP, on the same rows, and says that it beats every network (so those
    commands will keep it and the approaches become the same model); the call still compares the networks."""
    from multitask.advise.evidence import measure_evidence

    x = features(n=1600, d=12, seed=3)
    y = np.stack([x[:, 2 * j] + x[:, 2 * j + 1] > 0 for j in range(6)], axis=1).astype(float)
    config = build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [2]}},
                           "train": {"progress": False, "epochs": 40, "batch_size": 32, "lr": 0.01}})
    train = label_table_from_arrays(x, y, split=np.array(["train"] * len(x)))
    evidence = measure_evidence(config, train, np.arange(1200), np.arange(1200, 1600), image_size=None, seed=0)
    linear = evidence.linear
    assert linear is not None and linear.macro() > 0.97  # the tasks are linear
    assert set(linear.ap) == set(evidence.tasks) and linear.steps == 0
    assert linear.macro() > max(a.macro() for a in evidence.approaches.values())
    assert any("above every network" in line for line in evidence.lines())
    off = build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [2]}, "select": "off"},
                        "train": {"epochs": 2}})
    assert measure_evidence(off, train, np.arange(1200), np.arange(1200, 1600), image_size=None, seed=0).linear \
        is None


def test_identical_tasks_are_never_a_clear_call_for_separate_networks(tmp_path: Path) -> None:
    """Three copies of one task: separate networks cannot be clearly better; a tie goes to the cheaper network."""
    x = features(n=600)
    a = (x[:, 0] + x[:, 1] > 0).astype(float)
    advice = advise(mlp_config(tmp_path, epochs=10), label_table_from_arrays(x, np.stack([a, a, a], axis=1)),
                    probe_steps=20, threads=1)
    assert advice.recommendation == CALL_SHARED, advice.reasons
    assert "choose by cost" in advice.reasons[0] or advice.confidence == "clear"


@pytest.mark.slow
def test_printed_compare_command_runs_as_printed(tmp_path: Path, tiny_scenes: Path, monkeypatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The "Confirm it" command carries the image folder, the input column and the recipe: it runs as printed."""
    import shlex

    import pandas as pd

    from multitask.cli import run_cli

    frame = pd.read_csv(tiny_scenes, dtype=str, keep_default_na=False).rename(columns={"image": "photo"})
    table = tmp_path / "elsewhere" / "labels.csv"
    table.parent.mkdir()
    frame.to_csv(table, index=False)
    monkeypatch.chdir(tmp_path)
    args = ["advise", "--data", str(table), "--images", str(tiny_scenes.parent), "--data.input_column", "photo",
            "--trunk", "small_cnn", "--model.trunk_options", "{width: 8}", "--image-size", "32",
            "--train.epochs", "2", "--probe-steps", "5", "--threads", "1", "--train.progress", "false"]
    assert run_cli(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    command = lines[lines.index("Confirm it by training in full (the same data and recipe):") + 1]
    words = shlex.split(command)
    assert words[:2] == ["multitask", "compare"]
    for option in ("--data.images", "--data.input_column", "--model.trunk_options", "--train.epochs"):
        assert option in words, command
    assert run_cli(words[1:]) == 0, capsys.readouterr().out
