"""The one shape of a name that reaches tags, batch directives and remote command lines unquoted."""

from __future__ import annotations

import re

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
SLUG = re.compile(SLUG_PATTERN)
SLUG_HINT = "lowercase letters, digits and '-', starting with a letter or digit, at most 63"
