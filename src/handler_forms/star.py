"""The handler is bound here only by a star import: `ast` cannot tell what it is."""

from handler_forms.impl import *  # noqa: F401,F403
