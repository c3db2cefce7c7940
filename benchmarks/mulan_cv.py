"""Is the Mulan miss a tuning accident? 3-fold cross-validation on the training files only (the test files stay
unseen): label-ranking average precision of MultiTaskClassifier variants against the per-label RBF SVC, same folds.

    python benchmarks/mulan_cv.py          # yeast, scene, emotions; writes docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import markdown_table, write_section  # noqa: E402
from mulan import binary_relevance, load  # noqa: E402

BASE = {"hidden": (512,), "dropout": 0.5, "epochs": 200, "patience": 20, "lr": 1e-3, "weight_decay": 1e-3,
        "validation_fraction": 0.15}
VARIANTS = {
    "MLP 512, dropout 0.5, weight decay 1e-3 (the benchmark's)": {},
    "MLP 1024, dropout 0.6": {"hidden": (1024,), "dropout": 0.6},
    "weight decay 1e-2": {"weight_decay": 1e-2},
    "batch 32, lr 5e-4": {"batch_size": 32, "lr": 5e-4},
    "MLP 256-256": {"hidden": (256, 256)},
    "dropout 0.6, weight decay 3e-3": {"dropout": 0.6, "weight_decay": 3e-3},
}


def cross_validated(fit_predict, x: np.ndarray, y: np.ndarray, folds: int) -> float:
    """Mean label-ranking AP over `folds` seeded folds of the training file."""
    from sklearn.metrics import label_ranking_average_precision_score
    from sklearn.model_selection import KFold

    scores = [label_ranking_average_precision_score(y[valid].astype(int), fit_predict(x[train], y[train], x[valid], k))
              for k, (train, valid) in enumerate(KFold(folds, shuffle=True, random_state=0).split(x))]
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="yeast,scene,emotions")
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args()

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from multitask.sklearn import MultiTaskClassifier

    names = args.sets.split(",")
    svc = make_pipeline(StandardScaler(), SVC(kernel="rbf"))
    table: dict[str, list[float]] = {}
    for name in names:
        x, y, _, _ = load(name)
        for label, options in VARIANTS.items():
            def fit_predict(x_fit, y_fit, x_valid, fold, options=options):
                model = MultiTaskClassifier(**{**BASE, **options}, random_state=fold).fit(x_fit, y_fit)
                return model.predict_proba(x_valid)

            table.setdefault(label, []).append(cross_validated(fit_predict, x, y, args.folds))
            print(name, label, f"{table[label][-1]:.4f}", flush=True)
        table.setdefault("BR: RBF SVC, standardised", []).append(cross_validated(
            lambda x_fit, y_fit, x_valid, fold: binary_relevance(svc, x_fit, y_fit, x_valid), x, y, args.folds))
        print(name, "svc", f"{table['BR: RBF SVC, standardised'][-1]:.4f}", flush=True)
    rows = [[label, *(f"{v:.4f}" for v in values)] for label, values in table.items()]
    svc_scores = table["BR: RBF SVC, standardised"]
    best = [max(values[i] for label, values in table.items() if not label.startswith("BR")) for i in range(len(names))]
    body = "\n\n".join([
        "### Is the miss a tuning accident? Cross-validation on the training files",
        f"{args.folds}-fold cross-validation on each standard training file (the test files unused); label-ranking "
        "average precision; every network with early stopping on 15 % of its fold's training part.",
        markdown_table(["model", *names], rows),
        "Best network variant against the SVC, same folds: " + "; ".join(
            f"{name} {b:.4f} vs {s:.4f} ({100 * (b - s):+.1f} points)"
            for name, b, s in zip(names, best, svc_scores, strict=True)) + "."])
    print(body)
    write_section("mulan-cv", body, "python benchmarks/mulan_cv.py")


if __name__ == "__main__":
    main()
