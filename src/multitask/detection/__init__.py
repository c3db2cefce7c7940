"""Object detection with partial annotations: box tables, COCO JSON, and an unknown-aware COCO-style metric.

For class c in image i an annotation is *boxes*, *verified absent* (known, no box) or *unknown*; a
:class:`~multitask.detection.boxes.BoxTable` holds the boxes and a boolean ``known`` (images, classes).

- :mod:`~multitask.detection.boxes`: the BoxTable, its validation, :func:`read_box_table` / :func:`write_box_table`;
- :mod:`~multitask.detection.box_files`: the CSV / Parquet box-table format (read through the one table reader);
- :mod:`~multitask.detection.coco_json`: COCO (and LVIS-style) instances JSON in and out;
- :func:`multitask.importers.merge_box_tables`: merging box tables with different class sets (beside the label
  tables' merge: one rule, one place); ``multitask.importers`` also reads VOC, COCO and Open Images boxes;
- :mod:`~multitask.detection.metrics`: AP@0.5 and AP@[.5:.95] per class, unknown-aware;
- the detector on top of these: ``model``, ``loss``, ``training``, ``run``, ``compare``, ``predict``, ``export``,
  ``report``, ``cli`` (see each module's docstring).

Imports are lazy: ``import multitask.detection`` loads nothing heavy.

>>> from multitask.detection import BoxTable
>>> BoxTable.__name__
'BoxTable'
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "BoxTable": "multitask.detection.boxes",
    "read_box_table": "multitask.detection.boxes",
    "write_box_table": "multitask.detection.boxes",
    "read_coco_json": "multitask.detection.coco_json",
    "write_coco_json": "multitask.detection.coco_json",
    "merge_box_tables": "multitask.importers.merge",
    "DetectionScores": "multitask.detection.metrics",
    "detection_scores": "multitask.detection.metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'multitask.detection' has no attribute {name!r}")
