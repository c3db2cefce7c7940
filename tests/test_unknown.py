"""Unknown-label strategies: each loss against a brute-force double loop over examples and tasks, written out
from its paper's formula; state in checkpoints; the config and CLI names; self-training never changes a
known label."""

import math

import numpy as np
import pytest
import torch

from multitask.losses import per_task_losses
from multitask.unknown import UNKNOWNS, build_unknown, class_priors

M, T = 11, 5


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def bce(z: float, y: float, w: float = 1.0) -> float:
    p = sigmoid(z)
    return -(w * y * math.log(p) + (1 - y) * math.log(1 - p))


def focal_pos(z: float, gamma: float, w: float) -> float:
    p = sigmoid(z)
    return (1 - p) ** gamma * -w * math.log(p)


def reduce(cells: dict, m: int, t: int, normalization: str) -> list[float]:
    """cells: {(i, j): loss} of the cells that enter the loss."""
    out = []
    for j in range(t):
        values = [v for (i, jj), v in cells.items() if jj == j]
        out.append(sum(values) / (m if normalization == "batch" else max(len(values), 1)))
    return out


def counts_of(cells: dict, t: int) -> list[float]:
    return [float(sum(1 for (_, j) in cells if j == jj)) for jj in range(t)]


def random_case(seed: int, p_known: float = 0.5):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(M, T, generator=g, dtype=torch.float64) * 2.5
    targets = (torch.rand(M, T, generator=g) < 0.4).double()
    known = torch.rand(M, T, generator=g) < p_known
    pos_weight = torch.rand(T, generator=g, dtype=torch.float64) * 2 + 0.5
    return logits, targets, known, pos_weight


def brute_cells(name: str, options: dict, logits, targets, known, w, *, epoch: int = 0, prior=None) -> dict:
    """The paper's loss of every cell that enters it, one at a time."""
    m, t = logits.shape
    z = [[float(logits[i, j]) for j in range(t)] for i in range(m)]
    y = [[float(targets[i, j]) for j in range(t)] for i in range(m)]
    k = [[bool(known[i, j]) for j in range(t)] for i in range(m)]
    cells: dict = {}
    if name == "ignore":
        return {(i, j): bce(z[i][j], y[i][j], w[j]) for i in range(m) for j in range(t) if k[i][j]}
    if name == "negative":
        return {(i, j): bce(z[i][j], y[i][j] if k[i][j] else 0.0, w[j]) for i in range(m) for j in range(t)}
    if name == "partial_bce":
        gamma, g_low = options.get("gamma", -1.0), options.get("g_low", 5.0)
        alpha = (g_low - 1) / (0.1 ** gamma - 1)
        for i in range(m):
            p = max(sum(k[i]) / t, 1 / t)
            g = alpha * p ** gamma + 1 - alpha
            cells.update({(i, j): g * bce(z[i][j], y[i][j], w[j]) for j in range(t) if k[i][j]})
        return cells
    if name == "asl":
        gp, gn, clip = options.get("gamma_pos", 0.0), options.get("gamma_neg", 4.0), options.get("clip", 0.05)
        for i in range(m):
            for j in range(t):
                if not k[i][j] and not options.get("unknown_as_negative"):
                    continue
                target = y[i][j] if k[i][j] else 0.0
                pm = max(sigmoid(z[i][j]) - clip, 0.0)
                negative = -(pm ** gn) * math.log(1 - pm)
                cells[i, j] = target * focal_pos(z[i][j], gp, w[j]) + (1 - target) * negative
        return cells
    if name in ("hill", "splc"):
        for i in range(m):
            for j in range(t):
                p = sigmoid(z[i][j])
                if k[i][j]:
                    cells[i, j] = focal_pos(z[i][j], 2.0, w[j]) if y[i][j] else -math.log(1 - p)
                elif name == "hill":
                    cells[i, j] = (1.5 - p) * p ** 2
                elif epoch >= 1 and p > options.get("tau", 0.6):
                    cells[i, j] = focal_pos(z[i][j], 2.0, w[j])
                else:
                    cells[i, j] = p ** 2 * -math.log(1 - p)
        return cells
    if name == "selective":
        top_prior = int(math.floor(options.get("prior_fraction", 0.2) * t + 0.5))
        by_prior = sorted(range(t), key=lambda j: -prior[j])[:top_prior]
        top_l = options.get("top_likelihood", 1)
        for i in range(m):
            likely = sorted(range(t), key=lambda j: -z[i][j])[:top_l]
            for j in range(t):
                if k[i][j]:
                    cells[i, j] = bce(z[i][j], y[i][j], w[j])
                elif j not in by_prior and j not in likely:
                    cells[i, j] = -math.log(1 - sigmoid(z[i][j]))
        return cells
    if name in ("ll_r", "ll_ct"):
        rate = min(epoch * options.get("rate", 0.05), options.get("max_rate", 0.5))
        unknown = [(i, j) for i in range(m) for j in range(t) if not k[i][j]]
        by_loss = sorted(unknown, key=lambda c: math.log(1 - sigmoid(z[c[0]][c[1]])))  # largest loss first
        large = set(by_loss[:int(rate * len(unknown))])
        for i in range(m):
            for j in range(t):
                if k[i][j]:
                    cells[i, j] = bce(z[i][j], y[i][j], w[j])
                elif (i, j) in large:
                    if name == "ll_ct":
                        cells[i, j] = bce(z[i][j], 1.0, w[j])
                else:
                    cells[i, j] = bce(z[i][j], 0.0, w[j])
        return cells
    raise AssertionError(name)


CELL_STRATEGIES = [("ignore", {}), ("negative", {}), ("partial_bce", {}),
                   ("partial_bce", {"gamma": -2.0, "g_low": 3.0}), ("asl", {}),
                   ("asl", {"gamma_pos": 1.0, "gamma_neg": 2.0, "clip": 0.0}),
                   ("asl", {"unknown_as_negative": True}), ("hill", {}), ("splc", {}), ("selective", {}),
                   ("selective", {"prior_fraction": 0.4, "top_likelihood": 2}), ("ll_r", {"rate": 0.2}),
                   ("ll_ct", {"rate": 0.2})]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("normalization", ["batch", "known"])
@pytest.mark.parametrize(("name", "options"), CELL_STRATEGIES)
@pytest.mark.parametrize("epoch", [0, 2])
def test_strategy_matches_brute_force(name: str, options: dict, normalization: str, seed: int, epoch: int) -> None:
    logits, targets, known, pos_weight = random_case(seed)
    strategy = build_unknown(name, T, **options)
    train_targets, train_known = (torch.rand(40, T, generator=torch.Generator().manual_seed(seed)) < 0.3).double(), \
        torch.rand(40, T, generator=torch.Generator().manual_seed(seed + 9)) < 0.6
    strategy.prepare(train_targets, train_known)
    strategy.start_epoch(epoch, 10)
    garbage = torch.where(known, targets, torch.full_like(targets, float("nan")))  # unknown targets never leak
    losses, counts = strategy(logits, garbage, known, normalization=normalization, pos_weight=pos_weight)
    prior = class_priors(train_targets, train_known).tolist()
    cells = brute_cells(name, options, logits, targets, known, pos_weight.tolist(), epoch=epoch, prior=prior)
    assert losses.tolist() == pytest.approx(reduce(cells, M, T, normalization), rel=1e-9, abs=1e-12)
    assert counts.tolist() == counts_of(cells, T)


@pytest.mark.parametrize("normalization", ["batch", "known"])
def test_epr_matches_brute_force(normalization: str) -> None:
    logits, targets, known, w = random_case(4)
    strategy = build_unknown("epr", T, expected_positives=1.7, lamb=0.8)
    losses, counts = strategy(logits, targets, known, normalization=normalization, pos_weight=w)
    k_hat = sum(sigmoid(float(logits[i, j])) for i in range(M) for j in range(T)) / M
    penalty = 0.8 * (k_hat - 1.7) ** 2 / T
    plain = reduce(brute_cells("ignore", {}, logits, targets, known, w.tolist()), M, T, normalization)
    assert losses.tolist() == pytest.approx([v + penalty / T for v in plain], rel=1e-9)
    assert counts.tolist() == [float(M)] * T


def test_epr_estimates_k_from_known_labels() -> None:
    strategy = build_unknown("epr", 2)
    strategy.prepare(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]), torch.ones(4, 2, dtype=torch.bool))
    assert float(strategy.k) == pytest.approx(0.5 + 0.25)


@pytest.mark.parametrize("normalization", ["batch", "known"])
def test_ignore_is_bit_for_bit_the_masked_loss(normalization: str) -> None:
    logits, targets, known, w = random_case(2)
    for ours, reference in zip(build_unknown("ignore", T)(logits, targets, known, normalization=normalization,
                                                          pos_weight=w),
                               per_task_losses(logits, targets, known, normalization=normalization, pos_weight=w),
                               strict=True):
        assert torch.equal(ours, reference)
    # ... and the formula of the loss before strategies existed, written out.
    mask = known.double()
    elementwise = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.where(known, targets, 0.0), pos_weight=w, reduction="none")
    before = (elementwise * mask).sum(0) / (M if normalization == "batch" else mask.sum(0).clamp(min=1))
    assert torch.equal(build_unknown("ignore", T)(logits, targets, known, normalization=normalization,
                                                  pos_weight=w)[0], before)


def test_every_strategy_without_positive_weight_equals_weight_one() -> None:
    logits, targets, known, _ = random_case(5)
    for name in UNKNOWNS.names():
        strategy = build_unknown(name, T)
        strategy.start_epoch(3, 10)
        a = strategy(logits, targets, known)[0]
        b = strategy(logits, targets, known, pos_weight=torch.ones(T, dtype=torch.float64))[0]
        assert torch.allclose(a, b), name


@pytest.mark.parametrize("name", UNKNOWNS.names())
def test_finite_losses_and_gradients_at_extremes(name: str) -> None:
    logits = torch.tensor([[80.0, -80.0, 0.0], [-80.0, 80.0, 3.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    known = torch.tensor([[True, True, False], [False, True, False]])
    strategy = build_unknown(name, 3)
    strategy.start_epoch(5, 10)
    for normalization in ("batch", "known"):
        losses, counts = strategy(logits, targets, known, normalization=normalization)
        assert losses.shape == (3,) and counts.shape == (3,) and torch.isfinite(losses).all()
        losses.sum().backward()
        assert torch.isfinite(logits.grad).all()
        logits.grad = None


def test_every_strategy_is_documented_with_a_paper_and_an_example() -> None:
    for name in UNKNOWNS.names():
        doc = UNKNOWNS.get(name).__doc__ or ""
        assert doc.strip().splitlines()[0], name
        assert ">>>" in doc or name in ("ll_r", "ll_ct"), name
        if name != "ignore":
            assert any(str(year) in doc for year in range(1995, 2025)) or "CVPR" in doc, name


def test_state_survives_a_checkpoint() -> None:
    """Class priors and the epoch are buffers: in every checkpoint, restored with the module; a checkpoint from
    before the strategies existed loads with the strategy's own state."""
    from multitask.config import RunConfig
    from multitask.training import MultiTaskModule

    cfg = RunConfig.model_validate({"model": {"trunk": "mlp", "trunk_options": {"hidden": [4]}},
                                    "loss": {"unknown": "selective"}})
    make = lambda: MultiTaskModule(None, ("a", "b", "c"), cfg.loss, cfg.train,  # noqa: E731
                                   model=cfg.model.model_dump(mode="json"), n_features=3)
    module = make()
    module.unknown.prepare(torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]), torch.ones(2, 3, dtype=torch.bool))
    module.unknown.start_epoch(4, 9)
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    other = make()
    other.on_load_checkpoint(checkpoint)
    other.load_state_dict(checkpoint["state_dict"])
    assert other.unknown.prior.tolist() == [1.0, 0.0, 0.5] and int(other.unknown.epoch) == 4
    old = {"state_dict": {k: v for k, v in module.state_dict().items() if not k.startswith("unknown.")}}
    fresh = make()
    fresh.on_load_checkpoint(old)
    fresh.load_state_dict(old["state_dict"])  # strict: no missing key


def test_unknown_name_is_refused_with_the_nearest_suggestion() -> None:
    from multitask.config import build_config
    from multitask.errors import ConfigError

    with pytest.raises(ConfigError, match="Did you mean 'partial_bce'"):
        build_config({"loss": {"unknown": "partial_bc"}})
    assert build_config({"loss": {"unknown": "asl", "unknown_options": {"clip": 0.1}}}).loss.unknown == "asl"


def test_unknown_option_is_refused_before_training() -> None:
    from multitask.checks import check_options
    from multitask.config import build_config
    from multitask.errors import ConfigError

    config = build_config({"model": {"trunk": "mlp"}, "loss": {"unknown": "asl", "unknown_options": {"clp": 0.1}},
                           "root": "/tmp"})
    with pytest.raises(ConfigError, match="Did you mean 'clip'"):
        check_options(config, "features")


def test_unknowns_command_lists_one_line_each() -> None:
    from typer.testing import CliRunner

    from multitask.cli import app

    result = CliRunner().invoke(app, ["unknowns"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == UNKNOWNS.names()


# ------------------------------------------------------------------------------------------ self-training
def random_table(seed: int, n: int = 60, t: int = 4):
    from multitask.tables import label_table_from_arrays

    rng = np.random.default_rng(seed)
    labels = (rng.random((n, t)) < 0.4).astype(float)
    labels[rng.random((n, t)) < 0.5] = np.nan
    split = rng.choice(["train", "val", "test"], size=n)
    return label_table_from_arrays(rng.normal(size=(n, 3)), labels, split=split)


@pytest.mark.parametrize("seed", range(5))
def test_completion_never_changes_a_known_label_nor_val_or_test(seed: int) -> None:
    from multitask.unknown.self_training import complete

    table = random_table(seed)
    probs = np.random.default_rng(seed + 1).random((int((table.split == "train").sum()), table.n_tasks))
    new, done = complete(table, probs, 0.7, 0.6)
    assert (new.known[table.known] == True).all()  # noqa: E712
    assert np.array_equal(new.targets[table.known], table.targets[table.known])
    assert not done[table.split != "train"].any() and not (done & table.known).any()
    outside = table.split != "train"
    assert np.array_equal(new.known[outside], table.known[outside])
    eligible = (~table.known[table.split == "train"]) & (np.maximum(probs, 1 - probs) >= 0.7)
    assert done.sum() == math.ceil(0.6 * eligible.sum())
    train_done = done[table.split == "train"]
    assert np.array_equal(new.targets[table.split == "train"][train_done], (probs[train_done] >= 0.5).astype(float))


def test_completion_accuracy_against_hidden_truth() -> None:
    from multitask.unknown.self_training import Completion

    completed = np.array([[True, False], [True, True]])
    values = np.array([[1.0, 0.0], [0.0, 1.0]])
    hidden = np.array([[True, True], [True, False]])
    truth = np.array([[1.0, 1.0], [1.0, 0.0]])
    score = Completion(completed, values).accuracy(hidden, truth)
    assert score == {"completed": 3, "scored": 2, "accuracy": 0.5, "completed_positive": 1,
                     "positive_precision": 1.0}


@pytest.mark.slow
def test_self_training_rounds_never_change_a_known_label(tmp_path) -> None:
    from multitask.config import build_config
    from multitask.models.network import build_network
    from multitask.tables import label_table_from_arrays
    from multitask.training import fit
    from multitask.unknown.self_training import complete_in_rounds

    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 4))
    y = (x @ rng.normal(size=(4, 3)) > 0).astype(float)
    y[rng.random(y.shape) < 0.5] = np.nan
    table = label_table_from_arrays(x, y, split=np.array(["train"] * 160 + ["val"] * 40 + ["test"] * 40))
    config = build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}},
                           "loss": {"unknown": "self_training", "unknown_options": {"rounds": 3, "precision": 0.8}},
                           "train": {"epochs": 15, "progress": False, "lr": 0.02}})
    network = build_network(config.model, 3, 4)
    completed, completion = complete_in_rounds(config, table, network, tmp_path, options={"rounds": 3,
                                                                                         "precision": 0.8})
    assert np.array_equal(completed.targets[table.known], table.targets[table.known])
    assert completed.known[table.known].all() and not completion.completed[table.known].any()
    assert completion.completed.sum() > 0 and len(completion.rounds) == 2
    assert (tmp_path / "self_training" / "round2" / "completed.npz").is_file()
    # A rerun (a resumed run) reuses the finished rounds instead of fitting again.
    again, second = complete_in_rounds(config, table, network, tmp_path, options={"rounds": 3, "precision": 0.8})
    assert all(r.get("reused") for r in second.rounds) and np.array_equal(again.known, completed.known)
    result = fit(config, table, network, tmp_path, quiet=True)  # the rounds are reused: one more fit
    assert result.completion is not None and result.completion.completed.sum() == completion.completed.sum()


# ------------------------------------------------------------------------------------------- end to end
def train_cli(tmp_path, data, name: str, *extra: str):
    from typer.testing import CliRunner

    from multitask.cli import app

    args = ["train", "--data", str(data), "--tasks", "a,b,c", "--trunk", "mlp", "--epochs", "2", "--name", name,
            "--root", str(tmp_path), "--model.trunk_options", "{hidden: [8]}", "--model.select", "off",
            "--train.patience_steps", "0", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (name, result.output, result.exception)
    return tmp_path / name


@pytest.mark.slow
@pytest.mark.parametrize("name", UNKNOWNS.names())
def test_every_strategy_trains_through_the_cli(tmp_path, tiny_features, name: str) -> None:
    import json

    run = train_cli(tmp_path, tiny_features, name, "--unknown", name)
    assert f"unknown: {name}" in (run / "config.yaml").read_text()
    assert json.loads((run / "metrics.json").read_text())["test"]["macro"]["average_precision"] is not None


def test_protocol_and_strategy_through_the_cli_record_the_truth_and_the_epoch(tmp_path, tiny_features) -> None:
    """--hide records the hidden labels in the run; the strategy's epoch (its curriculum) is in last.ckpt."""
    run = train_cli(tmp_path, tiny_features, "ll", "--unknown", "ll_r", "--hide", "rps:0.5", "--seed", "3")
    with np.load(run / "hidden_labels.npz") as saved:
        hidden, values = saved["hidden"], saved["values"]
        assert str(saved["protocol"]) == "rps:0.5" and hidden.sum() > 0
    from multitask.config import build_config
    from multitask.hiding import hide_labels
    from multitask.tables import read_data

    config = build_config({"data": {"path": str(tiny_features), "tasks": ["a", "b", "c"]}})
    expected = hide_labels(read_data(config.data, seed=3), "rps:0.5", seed=3)
    assert np.array_equal(hidden, expected.hidden) and np.array_equal(values, expected.values)
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert int(state["unknown.epoch"]) == 1  # the second (last) epoch, counted from 0


def test_unknown_strategy_names_are_checked_on_the_command_line(tmp_path, tiny_features, capsys) -> None:
    from multitask.cli import run_cli

    code = run_cli(["train", "--data", str(tiny_features), "--unknown", "hil", "--root", str(tmp_path)])
    assert code == 2 and "Did you mean 'hill'" in capsys.readouterr().out
    code = run_cli(["train", "--data", str(tiny_features), "--hide", "fcp:3", "--root", str(tmp_path)])
    assert code == 2 and "Did you mean 'fpc'" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("name", UNKNOWNS.names())
def test_every_strategy_trains_through_the_estimator(name: str) -> None:
    from multitask.sklearn import MultiTaskClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 5))
    y = (x @ rng.normal(size=(5, 3)) > 0).astype(float)
    y[rng.random(y.shape) < 0.4] = np.nan
    model = MultiTaskClassifier(hidden=(8,), epochs=2, select="off", patience_steps=0, unknown=name).fit(x, y)
    probs = model.predict_proba(x)
    assert probs.shape == (160, 3) and np.isfinite(probs).all()


def test_estimator_refuses_an_unknown_strategy() -> None:
    from multitask.sklearn import MultiTaskClassifier

    with pytest.raises(ValueError, match="unknown must be one of"):
        MultiTaskClassifier(unknown="nope").fit(np.zeros((4, 1)), np.array([[1.0], [0.0], [1.0], [0.0]]))


@pytest.mark.parametrize("name", UNKNOWNS.names())
def test_every_strategy_works_with_gradient_methods_in_both_modes(name: str) -> None:
    """The per-task losses go through the batched per-task backward of the gradient methods (vmapped) and the
    full-Jacobian mode; the loss weighting sees the same losses."""
    from multitask.config import RunConfig
    from multitask.training import MultiTaskModule

    torch.manual_seed(0)
    x, targets = torch.randn(12, 3), (torch.rand(12, 4) < 0.4).float()
    known = torch.rand(12, 4) < 0.5
    for weighting, mode in (("pcgrad", "representation"), ("mgda", "parameters")):
        cfg = RunConfig.model_validate({"model": {"trunk": "mlp", "trunk_options": {"hidden": [6]}},
                                        "loss": {"unknown": name}, "train": {"weighting": weighting,
                                                                             "gradients": mode}})
        module = MultiTaskModule(None, ("a", "b", "c", "d"), cfg.loss, cfg.train,
                                 model=cfg.model.model_dump(mode="json"), n_features=3)
        module.unknown.prepare(targets, known)
        module.unknown.start_epoch(2, 5)
        z = module.network.representation(x)
        step = module._gradient_step if mode == "representation" else module._parameter_gradient_step
        objective, losses, present = step(z, targets, known)
        objective.backward()
        assert torch.isfinite(objective) and losses.shape == (4,)
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.network.parameters()
                   if p.requires_grad)


@pytest.mark.slow
def test_self_training_reports_the_accuracy_of_its_completed_labels(tmp_path, tiny_features) -> None:
    import json

    run = train_cli(tmp_path, tiny_features, "st", "--unknown", "self_training", "--hide", "rps:0.5",
                    "--loss.unknown_options", "{rounds: 2, precision: 0.6}", "--epochs", "6", "--lr", "0.02")
    completion = json.loads((run / "metrics.json").read_text())["completion"]
    # The data had unknown labels before the protocol hid more: only the completed cells it hid are scored.
    assert completion["completed"] >= completion["scored"] > 0
    assert 0.5 <= completion["accuracy"] <= 1
