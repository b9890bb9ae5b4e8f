"""The app gunicorn serves: `gunicorn services.gateway.wsgi:app`."""

from services.gateway.app import create_app
from shared.config import Config
from shared.logs import setup_logging
from shared.states import load_state_packages

config = Config.from_env()
setup_logging(config.log_level)
load_state_packages(config.state_packages)
app = create_app(config)
