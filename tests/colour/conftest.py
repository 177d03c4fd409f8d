"""Colour tests: import colour-science through toolkit.colour first.

Importing colour-science switches NumPy to its legacy (1.13) print style for
the whole process; toolkit.colour undoes that. Importing it here, before the
test modules (which import ``colour as colour_science``), keeps array reprs in
every other test of the session as NumPy prints them by default.
"""

import toolkit.colour  # noqa: F401
