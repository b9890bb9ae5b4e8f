"""Property-based tests of the gateway against its own /openapi.json, with
Schemathesis: every operation of the document, the operator API's with the
operator token, is called with generated requests, valid and invalid, and
each answer must be no server error (5xx) and must be what the document
declares: a declared status, media type and headers, and a body that
matches its schema.

The app runs in process (falcon's WSGI app, the admin service driven in
process as in test_operator_api.py) over the session's database, with data
for every state (the gateway tests' nc release, the md and il samples), so
the aggregates and analytics compute real answers. Part of the generated
ids are steered to agencies, datasets, imports and census refreshes that
exist, and part of the bodies made acceptable, or nearly every call would
stop at a 404 or a 400.

Generation is derandomized and bounded (MAX_EXAMPLES per operation), keeps
no example database, and Hypothesis's own files go to a temporary folder,
not into the checkout. What the operator calls change (the mappings, the
stop reasons, datasets, census requests) is put back afterwards, and the
imports they queued are ended as conftest ends those a test leaves.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import uuid
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import GenerationMode, checks
from sqlalchemy import text

from odp.stack import samples
from services.gateway.backends import Deps, cache_client, reader_engine
from services.gateway.resources.operator import MAX_CSV_BYTES, MAX_JSON_BYTES
from services.ingest.pipeline import run_import
from services.stats.refresh import refresh
from tests.conftest import OPERATOR_TOKEN, leave_nothing_behind, with_operator_calls
from tests.support.admin import InProcessAdmin
from tests.support.gateway import gateway_client

# Per operation; ODP_SCHEMATHESIS_EXAMPLES asks for a deeper search.
MAX_EXAMPLES = int(os.environ.get("ODP_SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance, checks.ignored_auth]
# The operators' tables a generated call may replace, put back after the test.
RESTORED_TABLES = ("admin.agency_mappings", "admin.md_stop_reasons")
CSV_HEADERS = {"/admin/api/agencies/{state}/mapping/": "code,name,geoid\n",
               "/admin/api/stop-reasons/{state}/": "stem,purpose\n"}

# Hypothesis keeps its caches (Unicode tables) under its home directory,
# `.hypothesis` in the working directory unless told otherwise.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "odp-hypothesis")


def _load_sample(config, engine, state: str) -> None:
    loaded = run_import({"import_id": f"schemathesis-{state}-{uuid.uuid4().hex[:8]}",
                         "state": state, "url": samples()[state].as_uri()}, config)
    assert loaded["event"] == "dataset_loaded", loaded
    refresh(engine, state, loaded["payload"]["data_version"])


def _ids(client, path: str) -> list:
    response = client.call("GET", path)
    assert response.status_code == 200, (path, response.text)
    return sorted({item["id"] for item in response.json})


@pytest.fixture
def operator_client(admin_config, engine):
    """A client of the app with the admin service in process, whose guard
    against token guessing allows (nearly) any number of wrong tokens:
    Schemathesis sends them on purpose (invalid cases, its probes of the
    authentication), and after the default ten the test's address would
    get nothing but 429s from the operator routes."""
    config = admin_config.with_changes(operator_max_failed_tokens=1_000_000)
    deps = Deps(engine=reader_engine(config), cache=cache_client(config),
                admin=InProcessAdmin(config, engine))
    try:
        with gateway_client(config, deps) as client:
            yield with_operator_calls(client)
    finally:
        deps.close()


@pytest.fixture
def nothing_left_behind(engine):
    """What the generated operator calls change, undone: the imports they
    queued ended (conftest's leave_nothing_behind), the mappings and stop
    reasons put back, the datasets and census requests they added removed,
    and any event of theirs still unpublished dropped, so no later test's
    admin service sends it.

    No operator call is left out of the test: the imports and census
    refreshes asked for would reach outside (a download, the Census API)
    only through the ingest and census services, which do not run here."""
    with engine.connect() as conn:
        saved = {table: [dict(row._mapping) for row in conn.execute(text(f"SELECT * FROM {table}"))]
                 for table in RESTORED_TABLES}
        first_dataset, first_event, started = conn.execute(text(
            "SELECT (SELECT coalesce(max(id), 0) + 1 FROM admin.datasets), "
            "(SELECT coalesce(max(id), 0) + 1 FROM admin.outbox), now()")).one()
    yield
    leave_nothing_behind(engine)
    with engine.begin() as conn:
        for table, rows in saved.items():
            conn.execute(text(f"DELETE FROM {table}"))
            if rows:
                columns = list(rows[0])
                conn.execute(text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                  f"({', '.join(f':{column}' for column in columns)})"), rows)
        conn.execute(text("DELETE FROM admin.datasets WHERE id >= :id"), {"id": first_dataset})
        conn.execute(text("DELETE FROM admin.census_refreshes WHERE requested_at >= :at"),
                     {"at": started})
        conn.execute(text("DELETE FROM admin.outbox WHERE id >= :id AND published_at IS NULL"),
                     {"id": first_event})


def _steer(known: dict[str, list], values: dict | None) -> st.SearchStrategy:
    """`values` as generated, or with one id replaced by one that exists."""
    options = [st.just(values)]
    for name, value in (values or {}).items():
        if name in known and isinstance(value, int | str) and not isinstance(value, bool):
            options.append(st.sampled_from(known[name]).map(
                lambda chosen, name=name: {**values, name: chosen}))
    return st.one_of(options)


def _csv_rows(header: str) -> st.SearchStrategy:
    """A CSV body: the header row, then rows of as many cells of any text."""
    columns = header.count(",") + 1

    def written(rows):
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return header + out.getvalue()

    cells = st.lists(st.text(max_size=12), min_size=columns, max_size=columns)
    return st.lists(cells, max_size=4).map(written)


def _steer_body(data_dir, context, body) -> st.SearchStrategy:
    """The generated body, or one the operation may accept: a dataset with a
    file URL of its own (a host's URL would be looked up in the DNS, and two
    datasets cannot share one), a CSV body of rows under its header row."""
    operation = context.operation
    if operation.method == "post" and operation.path == "/admin/api/datasets/" and \
            isinstance(body, dict):
        return st.one_of(st.just(body), st.uuids().map(
            lambda tag: {**body, "url": (data_dir / f"{tag}.zip").as_uri()}))
    if operation.path in CSV_HEADERS and isinstance(body, str):
        return st.one_of(st.just(body), _csv_rows(CSV_HEADERS[operation.path]))
    return st.just(body)


def _schema(client) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", client.app,
                                            config=schemathesis.Config.from_dict({
        "auth": {"openapi": {"operatorToken": {"bearer": OPERATOR_TOKEN}}},
        "generation": {"database": "none", "deterministic": True},
    }))
    # Every path named, or the document's own path would be left out.
    return schema.include(path=list(schema.raw_schema["paths"]))


@pytest.fixture
def gateway_schema(town, operator_client, config, engine, nothing_left_behind):
    """The document the app serves, loaded by Schemathesis, with the hooks
    that steer its generation."""
    for state in ("md", "il"):
        _load_sample(config, engine, state)
    client = operator_client
    # A dataset with an import under way (another request of it is a 409),
    # on a file URL: nothing would be fetched from outside the machine.
    tag = uuid.uuid4().hex[:8]
    dataset = client.call("POST", "/admin/api/datasets/", json={
        "state": "nc", "name": f"Schemathesis {tag}", "date_received": "2026-11-20",
        "url": (config.data_dir / f"{tag}.zip").as_uri()})
    assert dataset.status_code == 201, dataset.text
    queued = client.call("POST", f"/admin/api/datasets/{dataset.json['id']}/import/")
    assert queued.status_code == 202, queued.text
    census = client.call("POST", "/admin/api/census/refresh/", json={})
    assert census.status_code == 202, census.text
    agencies = sorted({agency for state in ("nc", "md", "il")
                       for agency in _ids(client, f"/{state}/api/agency/")})
    known = {"agency_id": agencies, "agency": agencies,
             "dataset_id": _ids(client, "/admin/api/datasets/"),
             "import_id": _ids(client, "/admin/api/imports/"),
             "request_id": [census.json["request_id"]]}

    schema = _schema(client)
    schema.hook("flatmap_path_parameters")(lambda context, values: _steer(known, values))
    schema.hook("flatmap_query")(lambda context, values: _steer(known, values))
    schema.hook("flatmap_body")(lambda context, body: _steer_body(config.data_dir, context, body))
    return schema


def _fuzz(operation, call) -> None:
    """`call` with MAX_EXAMPLES of the operation's cases, valid and invalid,
    the same ones every run; the first failure, shrunk, is raised."""
    modes = [mode for mode in GenerationMode if mode == GenerationMode.POSITIVE
             or operation.path_parameters or operation.query or operation.body]

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large,
                                     HealthCheck.large_base_example])
    @given(case=st.one_of([operation.as_strategy(generation_mode=mode) for mode in modes]))
    def run(case):
        call(case)

    run()


def test_every_operation_answers_as_its_document_says(gateway_schema):
    operations = [result.ok() for result in gateway_schema.get_all_operations()]
    called: dict[str, int] = {}
    failures: dict[str, Exception] = {}

    def call(case):
        called[case.operation.label] = called.get(case.operation.label, 0) + 1
        try:
            case.call_and_validate(checks=CHECKS)
        except BaseExceptionGroup as failures:
            # Schemathesis's failures are a BaseExceptionGroup, which
            # Hypothesis would not take for a failing example to shrink.
            raise AssertionError(str(failures)) from None

    for operation in operations:
        try:
            _fuzz(operation, call)
        except Exception as error:  # noqa: BLE001 - every operation's failure is reported
            failures[operation.label] = error

    assert not failures, "\n\n".join(f"{label}:\n{error}" for label, error in failures.items())
    # No operation skipped: the document's every one was called.
    assert sorted(called) == sorted(f"{method.upper()} {path}" for path, methods in
                                    gateway_schema.raw_schema["paths"].items()
                                    for method in methods)


def test_what_generation_seldom_reaches_is_as_declared(admin_config, engine):
    """Checked against the document as above: a body over the route's limit
    (413); the NUL character, which PostgreSQL's text cannot hold, in a
    field, a CSV body and a census request's id (it made 500s, found by the
    test above); the guard's refusal after too many wrong tokens (429)."""
    deps = Deps(engine=reader_engine(admin_config), cache=cache_client(admin_config),
                admin=InProcessAdmin(admin_config, engine))
    try:
        with gateway_client(admin_config, deps) as client:
            schema = _schema(client)
            token = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
            datasets = schema["/admin/api/datasets/"]["POST"]
            mapping = schema["/admin/api/agencies/{state}/mapping/"]["PUT"]
            census = schema["/admin/api/census/refresh/{request_id}/"]["GET"]
            dataset = {"state": "nc", "name": "NUL\x00", "date_received": "2026-11-20",
                       "url": (admin_config.data_dir / f"{uuid.uuid4().hex}.zip").as_uri()}
            expected = [
                (datasets.Case(body={"name": "x" * MAX_JSON_BYTES}, headers=token), 413),
                (mapping.Case(path_parameters={"state": "nc"}, headers=token,
                              body="code,name,geoid\n" + "x" * MAX_CSV_BYTES), 413),
                (datasets.Case(body=dataset, headers=token), 400),
                (mapping.Case(path_parameters={"state": "nc"}, headers=token,
                              body="code,name,geoid\nA\x00,Alder,\n"), 400),
                (census.Case(path_parameters={"request_id": "a\x00"}, headers=token), 404)]
            answered = [(case.call_and_validate(checks=CHECKS).status_code, status)
                        for case, status in expected]

            imports = schema["/admin/api/imports/"]["GET"]
            wrong = imports.Case(headers={"Authorization": "Bearer not-the-token"})
            statuses = [wrong.call_and_validate(checks=CHECKS).status_code
                        for _ in range(admin_config.operator_max_failed_tokens + 1)]
            refused = imports.Case(headers=token).call_and_validate(checks=CHECKS)
    finally:
        deps.close()
    assert [status for status, _ in answered] == [status for _, status in answered]
    assert statuses == [403] * admin_config.operator_max_failed_tokens + [429]
    assert refused.status_code == 429
