"""The cases, one module per area (server layer) or per layer (loop, stream, client);
importing this package registers them all."""
from . import syntax, headers, framing, smuggling, connection, limits, web  # noqa: F401
from . import loop, stream, client  # noqa: F401
from . import promoted  # noqa: F401  (cases made from wire-fuzzing findings: fuzz/wire/promote.py)
