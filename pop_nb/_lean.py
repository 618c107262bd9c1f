"""Imported first by pop-nb's own processes (the ``pop`` command, job runners), never by a user's kernel.

jsonschema imports ``rfc3987_syntax`` whenever it is installed (jupyter's ``jsonschema[format-nongpl]``
installs it) only to check the ``iri`` string format, and that import builds a parser grammar: 2.0 s
alone, 3.7 s under load, in every runner (nbformat imports jsonschema). pop-nb checks no string formats,
so its processes skip the module; jsonschema then simply has no ``iri`` format checker.
"""

import sys

sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None means "import fails"
