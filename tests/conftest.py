"""Suite-wide test settings."""

from __future__ import annotations

import tempfile

from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

# tests never write into the working tree: Hypothesis keeps its files (./.hypothesis by default)
# in a temporary folder, and no example database
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="selectsearch-hypothesis-"))
settings.register_profile("selectsearch", database=None)
settings.load_profile("selectsearch")
