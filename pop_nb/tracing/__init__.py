"""A job's trace: spans written to ``spans.jsonl`` as the job runs (:mod:`.spans`, :mod:`.recorder`,
:mod:`.calls`), sent on by OTLP when an endpoint is configured (:mod:`.otlp`, ``pop-nb[otel]``), spans
a cell makes with the OpenTelemetry API nested under its stage (:mod:`.kernel`), and the tree
``pop trace`` prints (:mod:`.tree`). The file format is :class:`pop_nb.models.trace.SpanRecord`.
"""
