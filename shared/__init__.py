"""The platform's common package: configuration, database, events, states, logging."""

import warnings

# nameko runs on eventlet, which warns on import that it is in maintenance
# mode; the warning says nothing an operator can act on.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
