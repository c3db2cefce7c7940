"""The input boundary: one reader, one label vocabulary, validation and splits, and the LabelTable they make.

- :mod:`~multitask.tables.reader`: CSV / TSV / TXT, Parquet, ARFF files and DataFrames → a RawTable (pyarrow);
- :mod:`~multitask.tables.vocabulary`: what a label cell may hold;
- :mod:`~multitask.tables.splits`: split columns and seeded splits;
- :mod:`~multitask.tables.validate`: feature values, trainable tasks, image files;
- :mod:`~multitask.tables.load`: RawTable → validated :class:`~multitask.tables.table.LabelTable`.

>>> import numpy as np
>>> label_table_from_arrays(np.zeros((2, 1)), np.array([[1.0], [0.0]])).n_tasks
1
"""

from multitask.tables.load import (
    label_table_from_arrays,
    label_table_from_frame,
    read_data,
    read_label_table,
    table_from_raw,
)
from multitask.tables.reader import TABLE_SUFFIXES, RawTable, read_table, table_from_frame
from multitask.tables.splits import SPLITS, seeded_split
from multitask.tables.table import LabelTable
from multitask.tables.validate import FEATURE_LIMIT, check_trainable, untrainable_tasks

__all__ = [
    "FEATURE_LIMIT",
    "SPLITS",
    "TABLE_SUFFIXES",
    "LabelTable",
    "RawTable",
    "check_trainable",
    "label_table_from_arrays",
    "label_table_from_frame",
    "read_data",
    "read_label_table",
    "read_table",
    "seeded_split",
    "table_from_frame",
    "table_from_raw",
    "untrainable_tasks",
]
