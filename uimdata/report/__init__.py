"""report: ``uim report RUN`` writes one self-contained HTML file describing a run.

Everything is inlined: the charts are matplotlib figures embedded as ``data:`` URIs (SVG for bar
charts and heat maps, PNG for the embedding map), the CSS sits in a ``<style>`` element and the page
has no script at all. A Content-Security-Policy meta forbids every network load and every script,
and all text (corpus rows, labels, reasons, descriptions) goes through Jinja2's autoescape, so a
corpus holding ``<script>`` or ``<img onerror=...>`` shows as literal text.

Big corpora are sampled, never dumped: the worst ``examples`` rows per issue with texts cut at
``TEXT_CHARS``, at most ``MAP_POINTS`` uniformly sampled + ``MAP_FLAGGED`` flagged points on the
embedding map, read from at most ``MAP_SHARDS`` embedding shards, the first ``MAX_SLICES`` slices.

Where each part lives:

* ``page``: ``write_report`` / ``render_report``, the order of the sections, the template;
* ``corpus``: overview, issue summary, worst examples;
* ``classes``: classes and long tail, label noise;
* ``embedding_map``: the PCA map of sampled embeddings;
* ``link_probe``: ``slices`` and ``issue_attribution`` (``uim link``), ``probe_results`` (``uim probe``),
  only when their tables exist in ``uim.duckdb``; only the columns named in ``*_COLUMNS`` are read;
* ``db`` (queries of ``sql/report_*.sql``), ``blocks`` (cell formatting and block dicts),
  ``charts`` (matplotlib settings and helpers): what the sections share. The "Issues by source"
  section is ``uimdata.report.by_source.report_section``.
"""

from uimdata.report.page import render_report, write_report

__all__ = ["render_report", "write_report"]
