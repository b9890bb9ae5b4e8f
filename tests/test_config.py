"""Settings: read from the environment once, handed to child processes whole."""

from dataclasses import fields

from shared.config import ENVIRONMENT_NAMES, Config


def test_every_setting_survives_the_trip_to_a_child_process():
    config = Config.from_env(environ={
        "ODP_ALLOW_FILE_URLS": "1", "CENSUS_YEARS": "2019,2020", "PORT": "9000",
        "ODP_ADMIN_TOKENS": "a,b", "MEMCACHED_SERVERS": "10.0.0.1:11211,10.0.0.2:11211",
        "SMTP_PORT": "2525", "INGEST_MAX_REJECT_SHARE": "0.05"}, env_file=None)
    assert {field.name for field in fields(Config)} == set(ENVIRONMENT_NAMES)
    assert Config.from_env(environ=config.as_environ(), env_file=None) == config
    assert config.admin_tokens == ("a", "b") and config.port == 9000


def test_defaults_follow_the_architecture_document():
    config = Config.from_env(environ={}, env_file=None)
    assert config.database_url == "postgresql:///odp"
    assert config.amqp_uri == "amqp://guest:guest@localhost:5672/"
    assert config.memcached_servers == ("127.0.0.1:11211",)
    assert (config.smtp_host, config.smtp_port) == ("localhost", 25)
    assert config.allow_file_urls is False
    assert config.odp_url == "http://localhost:8000" and config.port == 8000


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("ODP_TOKEN=from-file\nPORT=8100\n")
    config = Config.from_env(environ={"PORT": "8200"}, env_file=env_file)
    assert config.odp_token == "from-file"
    assert config.port == 8200
