"""The app gunicorn serves: `gunicorn services.gateway.wsgi:app`."""

from services.gateway.app import create_app
from shared.config import Config
from shared.logs import setup_logging

config = Config.from_env()
setup_logging(config.log_level)
app = create_app(config)
