"""yeast, scene and emotions (../shared/data/mulan, standard splits): MultiTaskClassifier against scikit-learn
binary relevance (one RBF SVC per label; one LogisticRegression per label, both on standardised features), plus
the published point: emotions, one SVC(gamma='auto') per label on the raw features.

    python benchmarks/mulan.py             # 3 seeds for the neural network, writes docs/benchmarks.md
    python benchmarks/mulan.py --seeds 1 --sets emotions
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED, markdown_table, write_section  # noqa: E402

METRICS = [("hamming_loss", "Hamming loss ↓"), ("subset_accuracy", "subset acc. ↑"), ("micro_f1", "micro-F1 ↑"),
           ("one_error", "one-error ↓"), ("coverage", "coverage ↓"), ("ranking_loss", "ranking loss ↓"),
           ("average_precision", "avg. precision ↑")]
PUBLISHED = {"hamming_loss": 0.26485, "subset_accuracy": 0.14356}
ANALYSIS = """Why the target is missed where it is: these are small, dense tabular sets (391 to 1,500 training
examples, 72 to 294 features) with every label known, so the masked loss has nothing to gain and the shared
representation acts only as a mild regulariser across 6 to 14 labels. A per-label RBF SVM on standardised
features is the strongest classic baseline on them (it is also what the published scikit-multilearn point uses);
an MLP trained on 85 % of the training file (the rest decides early stopping) stays within about 1 to 2 points of
its average precision. Averaging several networks closes most of the remaining gap and beats the SVC on ranking
loss where noted above, at five times the cost. Six network variants cross-validated on the training files (next
section) do not change the picture: the best of them stays behind the SVC on yeast and scene in the same folds.
Cross-validating C and gamma of the SVC would widen the gap again; we did not tune the SVC, as the target is
stated against its defaults."""


def load(name: str):
    from multitask.data.arff import load_mulan

    parts = load_mulan(name, SHARED / "data" / "mulan")
    out = []
    for split in ("train", "test"):
        frame, labels = parts[split]
        features = [c for c in frame.columns if c not in labels]
        out += [frame[features].to_numpy(dtype=np.float64), frame[labels].to_numpy(dtype=np.float64)]
    return out


def binary_relevance(estimator, x_train, y_train, x_test) -> np.ndarray:
    """Scores (n, L): one clone of `estimator` per label; sigmoid of decision_function (threshold 0.5 = its own
    decision rule)."""
    from scipy.special import expit
    from sklearn.base import clone

    scores = []
    for j in range(y_train.shape[1]):
        model = clone(estimator).fit(x_train, y_train[:, j].astype(int))
        scores.append(model.decision_function(x_test))
    return expit(np.column_stack(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="yeast,scene,emotions")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ensemble", type=int, default=5, help="networks averaged in the ensemble row")
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from multitask.metrics import multilabel_metrics
    from multitask.sklearn import MultiTaskClassifier

    sections, verdicts = [], []
    for name in args.sets.split(","):
        x_train, y_train, x_test, y_test = load(name)
        rows, results = [], {}

        def report(label: str, runs: list[dict[str, float]], seconds: float, rows: list = rows,
                   results: dict = results) -> None:
            results[label] = {k: float(np.mean([r[k] for r in runs])) for k, _ in METRICS}
            cells = []
            for key, _ in METRICS:
                values = [r[key] for r in runs]
                cells.append(f"{np.mean(values):.4f}" + (f" ± {np.std(values):.4f}" if len(values) > 1 else ""))
            rows.append([label, *cells, f"{seconds:.1f}"])
            print(rows[-1], flush=True)

        runs, probabilities, start = [], [], time.perf_counter()
        for seed in range(max(args.seeds, args.ensemble)):
            model = MultiTaskClassifier(hidden=(512,), dropout=0.5, epochs=200, patience=20, lr=1e-3,
                                        weight_decay=1e-3, validation_fraction=0.15, random_state=seed)
            model.fit(x_train, y_train)
            probabilities.append(model.predict_proba(x_test))
            if seed < args.seeds:
                runs.append(multilabel_metrics(probabilities[-1], y_test))
        seconds = (time.perf_counter() - start) / len(probabilities)
        report("MultiTaskClassifier (MLP 512, dropout 0.5)", runs, seconds)
        report(f"MultiTaskClassifier, mean of {args.ensemble} seeds' probabilities",
               [multilabel_metrics(np.mean(probabilities[:args.ensemble], axis=0), y_test)], seconds * args.ensemble)
        for label, estimator in [
            ("BR: RBF SVC, standardised", make_pipeline(StandardScaler(), SVC(kernel="rbf"))),
            ("BR: LogisticRegression, standardised",
             make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))),
        ]:
            start = time.perf_counter()
            scores = binary_relevance(estimator, x_train, y_train, x_test)
            report(label, [multilabel_metrics(scores, y_test)], time.perf_counter() - start)
        if name == "emotions":
            start = time.perf_counter()
            scores = binary_relevance(SVC(gamma="auto"), x_train, y_train, x_test)
            report("BR: SVC(gamma='auto'), raw features (published point)", [multilabel_metrics(scores, y_test)],
                   time.perf_counter() - start)
            rows.append(["published (scikit-multilearn docs)", f"{PUBLISHED['hamming_loss']:.5f}",
                         f"{PUBLISHED['subset_accuracy']:.5f}", "", "", "", "", "", ""])
        mtc, svc = results["MultiTaskClassifier (MLP 512, dropout 0.5)"], results["BR: RBF SVC, standardised"]
        ensemble = results[f"MultiTaskClassifier, mean of {args.ensemble} seeds' probabilities"]
        better = mtc["average_precision"] > svc["average_precision"] and mtc["ranking_loss"] < svc["ranking_loss"]
        verdicts.append(f"- {name}: MultiTaskClassifier vs RBF SVC — average precision {mtc['average_precision']:.4f} "
                        f"vs {svc['average_precision']:.4f}, ranking loss {mtc['ranking_loss']:.4f} vs "
                        f"{svc['ranking_loss']:.4f}: target {'met' if better else 'missed'}. "
                        f"The {args.ensemble}-network average: {ensemble['average_precision']:.4f} and "
                        f"{ensemble['ranking_loss']:.4f}.")
        sections.append("\n\n".join([
            f"### {name} ({len(x_train)} train / {len(x_test)} test, {x_train.shape[1]} features, "
            f"{y_train.shape[1]} labels)",
            markdown_table(["model", *[label for _, label in METRICS], "fit time (s)"], rows)]))
    body = "\n\n".join([
        "## Multi-label benchmarks (Mulan): yeast, scene, emotions",
        "Standard train/test files. Thresholded measures at probability 0.5 (the SVC's own decision rule); "
        "coverage in Mulan's convention (steps down the ranking); one-error counts ties pessimistically "
        "(see `multitask.metrics.multilabel_metrics`). MultiTaskClassifier: mean ± std over "
        f"{args.seeds} seeds, early stopping on a seeded 15 % of the training file; its architecture (one hidden "
        "layer of 512, dropout 0.5, weight decay 1e-3) was chosen by 3-fold cross-validation on the three training "
        "files (label-ranking AP) among 256-256/dropout 0.3, 512/dropout 0.5 and 512/dropout 0.5 without early "
        "stopping; the SVC and logistic regression use scikit-learn's defaults.",
        *sections, "Targets (issue 3): MultiTaskClassifier better than per-label RBF SVC on average precision and "
        "ranking loss on all three sets.", "\n".join(verdicts), ANALYSIS])
    print(body)
    if args.seeds >= 3 and args.sets == "yeast,scene,emotions":
        write_section("mulan", body, "python benchmarks/mulan.py")


if __name__ == "__main__":
    main()
