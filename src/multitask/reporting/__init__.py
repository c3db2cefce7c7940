"""Reports a person reads: one self-contained HTML page (and the Markdown beside it) for every run, comparison
and advice.

- :mod:`~multitask.reporting.document`: a report as data (sections of text, facts, tables, plots) → Markdown
  and HTML (Jinja2 template and CSS in ``templates/``; plots embedded as base64 PNG; no script, no network);
- :mod:`~multitask.reporting.plots`: the figures (learning curves, per-task scores, precision–recall and ROC
  curves with the chosen thresholds, reliability diagrams, the comparison's differences with intervals);
- :mod:`~multitask.reporting.run`, :mod:`~multitask.reporting.comparison`, :mod:`~multitask.reporting.advice`:
  what each report contains.

Written by :func:`multitask.report.write_run_report`, :func:`multitask.report.write_comparison_report` and
:meth:`multitask.advise.result.Advice.write`.

>>> from multitask.reporting.document import Document, Section, Text, to_html
>>> "<h2>Notes</h2>" in to_html(Document("x", [Section("Notes", [Text("fine")])]))
True
"""
