"""The cases, one module per area; importing this package registers them all."""
from . import syntax, headers, framing, smuggling, connection, limits, web  # noqa: F401
