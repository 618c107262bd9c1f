"""Imported first by pop-nb's own processes (the ``pop`` command, job runners), never by a user's kernel.

jsonschema imports a library for each string format it can check, whenever that library is installed
(jupyter's ``jsonschema[format-nongpl]`` installs them all), and some cost a lot: ``rfc3987_syntax``
builds a parser grammar (2.0 s alone, 3.7 s under load, in every runner: nbformat imports jsonschema),
``rfc3986_validator`` compiles its regexes (~40 ms) and ``isoduration`` brings ``arrow`` (~25 ms).
pop-nb checks no string formats (it never passes a ``format_checker``), so its processes skip the
libraries that serve only that; jsonschema then simply has no checker for those formats. Libraries
that others use too (``idna``, ``jsonpointer``) are left alone.
"""

import sys

for _module in (
    "rfc3987_syntax",
    "rfc3986_validator",
    "rfc3339_validator",
    "isoduration",
    "uri_template",
    "webcolors",
    "fqdn",
):
    sys.modules.setdefault(_module, None)  # type: ignore[arg-type]  # None means "import fails"
