"""Suite-wide test settings."""

from __future__ import annotations

from hypothesis import settings

# no example database: tests never write into the working tree (it would be ./.hypothesis)
settings.register_profile("selectsearch", database=None)
settings.load_profile("selectsearch")
