"""What a job id may be, without the models that check seeds: listing job folders asks it too."""

import re

# a job id (and so a job folder's name): never a path, and the same text in any encoding
JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
