"""The app gunicorn serves:

    gunicorn --config python:services.gateway.gunicorn_conf services.gateway.wsgi:app

(the conf sets up the metrics of several workers and the logs' format)."""

from services.gateway.app import create_app
from shared.config import Config
from shared.logs import setup_logging
from shared.states import load_state_packages

config = Config.from_env()
setup_logging(config.log_level, log_format=config.log_format)
load_state_packages(config.state_packages)
app = create_app(config)
