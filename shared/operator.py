"""The operator API's contract between the gateway and the admin service:
the errors admin raises over RPC and the request bodies it validates.

The errors are registered with nameko so that the gateway's RPC client
raises them again as themselves (not as a generic RemoteError), and the
gateway turns each into its HTTP status. Their arguments must survive JSON.

    try:
        rpc.admin.add_dataset(digest, body)
    except InvalidInput as error:     # 400: error.problems == {"url": "..."}
        ...
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate, validates
from nameko.exceptions import deserialize_to_instance

from shared.netguard import PrivateAddress, check_host
from shared.states import STATES, KnownState

IMPORT_STATUSES = ("queued", "running", "loaded", "refreshed", "failed")
URL_SCHEMES = ("http", "https", "ftp")


class OperatorError(Exception):
    """An error the operator is told about, with a message to act on."""

    status = 500

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


@deserialize_to_instance
class InvalidInput(OperatorError):
    """Bad fields of a request: {field: message}."""

    status = 400

    def __init__(self, problems: dict):
        super().__init__(problems)
        self.problems = problems

    @property
    def message(self) -> str:
        return "; ".join(f"{name}: {text}" for name, text in self.problems.items())


# The context data key of an operator call's deadline (seconds since the
# epoch): the gateway stops waiting then, so admin does nothing after it.
CALL_DEADLINE = "odp_call_deadline"


@deserialize_to_instance
class Conflict(OperatorError):
    status = 409


@deserialize_to_instance
class NotFound(OperatorError):
    status = 404


@deserialize_to_instance
class Unavailable(OperatorError):
    """The admin service cannot reach what it needs (the database): try again."""

    status = 503


@deserialize_to_instance
class Forbidden(OperatorError):
    status = 403


def token_digest(token: str) -> str:
    """What is stored and compared of an operator token: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def flatten(messages: dict) -> dict[str, str]:
    """marshmallow's {field: [messages]} as {field: "message; message"}."""
    flat = {}
    for name, value in messages.items():
        if isinstance(value, dict):
            for inner, text in flatten(value).items():
                flat[f"{name}.{inner}"] = text
        elif isinstance(value, list):
            flat[name] = "; ".join(str(item) for item in value)
        else:
            flat[name] = str(value)
    return flat


class DatasetIn(Schema):
    """POST /admin/api/datasets/. The URL schemes and the data folder come
    from the configuration, so the schema is built with them."""

    state = fields.String(required=True, validate=KnownState("must be one of {choices}"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    date_received = fields.Date(required=True, metadata={"format": "YYYY-MM-DD"})
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    destination = fields.String(load_default=None, allow_none=True)
    report_email_1 = fields.Email(load_default=None, allow_none=True)
    report_email_2 = fields.Email(load_default=None, allow_none=True)

    def __init__(self, data_dir: Path | None = None, allow_file_urls: bool = False,
                 allowed_networks=(), **kwargs):
        super().__init__(**kwargs)
        self.data_dir = data_dir
        self.schemes = URL_SCHEMES + (("file",) if allow_file_urls else ())
        self.allowed_networks = tuple(allowed_networks)

    @validates("url")
    def check_url(self, value: str, data_key: str) -> None:
        parts = urlsplit(value)
        if parts.scheme not in self.schemes:
            raise ValidationError(f"the scheme must be one of {', '.join(self.schemes)}")
        if parts.scheme != "file" and not parts.hostname:
            raise ValidationError("the URL names no host")
        if parts.scheme != "file":
            try:
                check_host(parts.hostname, self.allowed_networks)
            except PrivateAddress as error:
                raise ValidationError(str(error)) from None

    @validates("destination")
    def check_destination(self, value: str | None, data_key: str) -> None:
        if value is None or self.data_dir is None:
            return
        path = inside_data_dir(value, self.data_dir)
        if path is None:
            raise ValidationError(f"must be a folder inside the data folder {self.data_dir}")
        # <data>/<state> holds the default folders of imports (<data>/nc/12 is
        # import 12's), whose files would be taken for this release's: not
        # the state's folder itself, nor an import's (all digits: an admin
        # import's id, present or future), nor anything inside one.
        parts = path.relative_to(Path(self.data_dir).resolve()).parts
        if parts and parts[0] in STATES:
            state_folder = Path(self.data_dir).resolve() / parts[0]
            if len(parts) == 1:
                raise ValidationError(f"{path} holds the default folders of {parts[0]} "
                                      "imports; choose a folder of its own")
            if parts[1].isdigit():
                raise ValidationError(f"{path} is in {state_folder / parts[1]}, the folder of "
                                      f"{parts[0]} import {parts[1]}; choose a folder of its "
                                      "own")


def inside_data_dir(destination: str, data_dir: Path) -> Path | None:
    """The destination as an absolute path when it lies inside `data_dir`
    (relative paths are taken from it), else None."""
    root = Path(data_dir).resolve()
    path = (root / destination).resolve()
    if path == root or root not in path.parents:
        return None
    return path


class ImportFilter(Schema):
    state = fields.String(load_default=None, validate=KnownState())
    status = fields.String(load_default=None, validate=validate.OneOf(IMPORT_STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class CensusRefresh(Schema):
    year = fields.Integer(load_default=None, allow_none=True,
                          validate=validate.Range(min=2009, max=2100))
