"""Built-in models; importing this package registers them in ``MODELS``."""
from . import deepgaitv2  # noqa: F401
from . import gaitgraph2  # noqa: F401
from . import gaitgraph1  # noqa: F401
from . import gaittr  # noqa: F401
from . import gpgait  # noqa: F401
from . import gpgait_plusplus  # noqa: F401
from . import raw_joints  # noqa: F401
