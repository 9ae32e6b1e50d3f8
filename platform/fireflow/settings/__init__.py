"""Settings, split by concern and read from the environment.

`FIREFLOW_ENV` picks the profile: ``development`` (default), ``test`` or ``production``.
Production refuses to start with a development secret key.
"""

from .base import *  # noqa: F403
from .billing import *  # noqa: F403
from .database import *  # noqa: F403
from .email import *  # noqa: F403
from .security import *  # noqa: F403
