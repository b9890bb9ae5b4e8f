"""The operator commands of `odp` (datasets, import, imports, agencies,
census) as an operator runs them: a separate process talking to the gateway
under gunicorn over HTTP, with the admin service (and, to follow imports,
the ingest and stats services) running behind it on the real broker."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid

import pytest
import requests

from tests.conftest import OPERATOR_TOKEN, ROOT
from tests.support.releases import release_of


def odp(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "odp", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli(admin_config, start_admin, start_gateway):
    """cli(ARGS..., NAME=value) runs `odp ARGS` against a gateway and an admin
    service of the test's own; cli.base is the gateway's URL."""
    start_admin()
    # A stopped admin is reported after this many seconds, not the default 15.
    base = start_gateway(ADMIN_RPC_TIMEOUT="3")
    env = admin_config.as_environ() | {"ODP_URL": base, "ODP_TOKEN": OPERATOR_TOKEN}

    def run(*args: str, **environ: str) -> subprocess.CompletedProcess:
        return odp(env | environ, *args)

    run.base = base
    return run


def api(cli, path: str):
    response = requests.get(f"{cli.base}{path}", timeout=30,
                            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert response.status_code == 200, response.text
    return response.json()


def tag() -> str:
    return uuid.uuid4().hex[:8]


def add_dataset(cli, url: str, *extra: str) -> tuple[int, str]:
    name = f"CLI release {tag()}"
    result = cli("datasets", "add", "--state", "nc", "--name", name,
                 "--date-received", "2026-11-20", "--url", url, *extra)
    assert result.returncode == 0, result.stderr
    return int(re.search(r"^created dataset (\d+)$", result.stdout, re.MULTILINE)[1]), name


def field(output: str, label: str) -> str:
    """The value of `label` in a record as `imports show` prints it."""
    match = re.search(rf"^  {re.escape(label)} +(.*)$", output, re.MULTILINE)
    assert match, (label, output)
    return match[1]


HELP = {
    ("datasets",): ["add", "list"],
    ("datasets", "add"): ["--state", "--name", "--date-received", "--url", "--dest",
                          "--email"],
    ("datasets", "list"): ["odp datasets list"],
    ("import",): ["DATASET", "--follow", "--timeout"],
    ("imports",): ["list", "show"],
    ("imports", "list"): ["--state", "--status", "--limit"],
    ("imports", "show"): ["ID"],
    ("agencies",): ["upload", "mapping"],
    ("agencies", "upload"): ["STATE", "FILE.csv", "code,name,geoid"],
    ("agencies", "mapping"): ["STATE", "code,name,geoid"],
    ("census", "refresh"): ["--year", "--timeout", "census service"],
}


@pytest.mark.parametrize("command", sorted(HELP), ids=" ".join)
def test_each_command_has_help_with_an_example(command):
    result = odp({"PATH": "/usr/bin:/bin"}, *command, "--help", timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: odp {' '.join(command)} ")
    assert "ODP_TOKEN" in result.stdout
    assert re.search(rf"^example:\n  odp {command[0]} ", result.stdout, re.MULTILINE)
    for word in HELP[command]:
        assert word in result.stdout, word


def test_the_top_level_help_lists_the_operator_commands():
    result = odp({"PATH": "/usr/bin:/bin"}, "--help", timeout=60)
    assert result.returncode == 0
    for command in ("datasets", "import", "imports", "agencies", "census", "facts"):
        assert re.search(rf"^    {command} ", result.stdout, re.MULTILINE), command


def test_datasets_add_prints_the_record_and_list_shows_it(cli):
    url = f"https://data.example.org/nc/{tag()}.zip"
    dataset_id, name = add_dataset(cli, url, "--dest", "nc/cli", "--email", "ops@example.org",
                                   "--email", "lawyer@example.org")

    stored = api(cli, f"/admin/api/datasets/{dataset_id}/")
    assert (stored["name"], stored["url"], stored["date_received"]) == (
        name, url, "2026-11-20")
    assert (stored["report_email_1"], stored["report_email_2"]) == (
        "ops@example.org", "lawyer@example.org")
    assert stored["destination"].endswith("/data/nc/cli")

    listed = cli("datasets", "list")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "STATE", "NAME", "RECEIVED", "URL"]
    (row,) = [row for row in rows if row.split()[0] == str(dataset_id)]
    assert re.fullmatch(rf"{dataset_id} +nc +{re.escape(name)} +2026-11-20 +"
                        rf"{re.escape(url)}", row)


def test_datasets_add_without_the_optional_fields_stores_none(cli):
    dataset_id, _ = add_dataset(cli, f"ftp://ftp.example.org/{tag()}.zip")
    stored = api(cli, f"/admin/api/datasets/{dataset_id}/")
    assert (stored["destination"], stored["report_email_1"], stored["report_email_2"]) == (
        None, None, None)


def test_refused_fields_are_printed_one_a_line_and_exit_2(cli):
    name = f"Refused {tag()}"
    result = cli("datasets", "add", "--state", "nc", "--name", name,
                 "--date-received", "2026-11-20", "--url", "gopher://example.org/r.zip")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: url: the scheme must be one of http, https, ftp, file"]
    assert result.stdout == ""

    result = cli("datasets", "add", "--state", "nc", "--name", name,
                 "--date-received", "2026-02-30", "--url", "https://example.org/r.zip",
                 "--email", "not-an-address")
    assert result.returncode == 2
    assert sorted(result.stderr.splitlines()) == [
        "error: date_received: Not a valid date.",
        "error: report_email_1: Not a valid email address."]
    assert name not in cli("datasets", "list").stdout


def test_a_used_name_is_a_conflict_exit_1(cli):
    _, name = add_dataset(cli, f"https://data.example.org/{tag()}.zip")
    result = cli("datasets", "add", "--state", "nc", "--name", name,
                 "--date-received", "2026-11-21", "--url", f"https://example.org/{tag()}.zip")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: name: another dataset already has name {name!r}")


def test_import_of_an_unknown_dataset_exits_1(cli):
    by_name = cli("import", "No such dataset")
    assert by_name.returncode == 1
    assert "there is no dataset named 'No such dataset'" in by_name.stderr
    by_id = cli("import", "987654")
    assert by_id.returncode == 1
    assert by_id.stderr.strip() == "error: there is no dataset 987654"
    assert "Traceback" not in by_name.stderr + by_id.stderr


def test_import_follow_shows_progress_until_refreshed(
        cli, release, start_ingest_service, start_service):
    start_ingest_service()
    start_service("services.stats", ODP_URL=cli.base)
    dataset_id, name = add_dataset(cli, release(release_of(3)).as_uri())

    # Following gives up at the timeout; the import goes on without it.
    hurried = cli("import", str(dataset_id), "--follow", "--timeout", "0")
    assert hurried.returncode == 1
    first = int(re.fullmatch(r"import (\d+) queued\n", hurried.stdout)[1])
    assert f"error: import {first} did not finish within 0 s" in hurried.stderr
    assert "done in" not in hurried.stderr

    # A second import of the same dataset while the first is under way is
    # refused, naming the first.
    again = cli("import", name)
    assert again.returncode == 1
    assert f"already has import {first} queued" in again.stderr

    # Another dataset, by name: it waits for the first import of nc, then runs.
    other_id, other = add_dataset(cli, release(release_of(3)).as_uri())
    followed = cli("import", other, "--follow")
    assert followed.returncode == 0, followed.stderr
    lines = followed.stdout.splitlines()
    second = int(re.fullmatch(r"import (\d+) queued", lines[0])[1])
    assert second > first
    assert lines[1] == (f"import {second} refreshed: stops 3, persons 3, searches 0, "
                        "contraband 0, search_bases 0")
    assert lines[2] == "rejected rows: 0"
    # The progress display (not a terminal here: a line per phase) ends with
    # the time taken.
    assert re.search(r"^(queued|[\w. ]+): \S+(?: MB)? of \S+(?: MB)?$", followed.stderr,
                     re.MULTILINE), followed.stderr
    assert re.search(r"^done in \d+\.\ds$", followed.stderr, re.MULTILINE)

    assert api(cli, f"/admin/api/imports/{first}/")["status"] == "refreshed"
    listed = cli("imports", "list", "--state", "nc", "--status", "refreshed", "--limit", "5")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:5] == ["ID", "DATASET", "STATE", "STATUS", "PHASE"]
    assert [row.split()[0] for row in rows][:2] == [str(second), str(first)]
    assert re.match(rf"{second} +{re.escape(other)} +nc +refreshed +refreshed +"
                    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$",
                    rows[0]), rows[0]
    failed = cli("imports", "list", "--status", "failed").stdout.splitlines()[1:]
    assert str(second) not in {row.split()[0] for row in failed}

    shown = cli("imports", "show", str(second))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"import {second}\n")
    assert field(shown.stdout, "dataset") == f"{other} (dataset {other_id})"
    assert field(shown.stdout, "status") == "refreshed"
    assert field(shown.stdout, "counts").startswith("stops 3, persons 3")
    assert field(shown.stdout, "rejected rows") == "0"
    assert field(shown.stdout, "error") == "-"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
                        field(shown.stdout, "finished (UTC)"))


def test_import_follow_of_a_broken_release_exits_1_with_the_error(
        cli, release, start_ingest_service):
    start_ingest_service()
    missing, _ = add_dataset(cli, f"file:///nonexistent/{tag()}/x.zip")
    result = cli("import", str(missing), "--follow")
    assert result.returncode == 1
    import_id = int(re.match(r"import (\d+) queued\n", result.stdout)[1])
    assert "refreshed" not in result.stdout and "done in" not in result.stderr
    assert re.search(rf"^import {import_id} failed during download: \S", result.stderr,
                     re.MULTILINE), result.stderr

    incomplete, name = add_dataset(cli, release(release_of(2), names=["Stop.txt"]).as_uri())
    result = cli("import", name, "--follow")
    assert result.returncode == 1
    failed_id = int(re.match(r"import (\d+) queued\n", result.stdout)[1])
    assert re.search(rf"^import {failed_id} failed during unpack: .*has no PERSON.txt",
                     result.stderr, re.MULTILINE), result.stderr

    shown = cli("imports", "show", str(failed_id))
    assert field(shown.stdout, "status") == "failed"
    assert field(shown.stdout, "phase") == "unpack"
    assert "has no PERSON.txt" in field(shown.stdout, "error")
    failed = cli("imports", "list", "--status", "failed").stdout
    assert {str(import_id), str(failed_id)} <= {row.split()[0] for row in
                                                failed.splitlines()[1:]}
    bad_filter = cli("imports", "list", "--limit", "0")
    assert bad_filter.returncode == 2
    assert bad_filter.stderr.startswith("error: limit: ")
    unknown = cli("imports", "show", "987654")
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1, "error: there is no import 987654")


def test_agencies_upload_replaces_the_mapping_and_refuses_a_bad_csv(cli, tmp_path):
    good = tmp_path / "nc-agencies.csv"
    good.write_text("code,name,geoid\n"
                    "DURHAM POLICE DEPT,Durham Police Department,1600000US3719000\n"
                    "ALDER PD,Alder Police Department,\n")
    result = cli("agencies", "upload", "nc", str(good))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "nc: 2 agencies mapped\n"

    expected = ("code,name,geoid\n"
                "ALDER PD,Alder Police Department,\n"
                "DURHAM POLICE DEPT,Durham Police Department,1600000US3719000\n")
    mapping = cli("agencies", "mapping", "nc")
    assert (mapping.returncode, mapping.stdout) == (0, expected)

    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,geoid\nA,B,\nC,,37063\n")
    result = cli("agencies", "upload", "nc", str(bad))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: bad.csv: line 3, column name: must not be empty",
        "error: bad.csv: line 3, column geoid: '37063' is not a census GEO_ID such as "
        "0500000US37063"]
    # The refused file changed nothing.
    assert cli("agencies", "mapping", "nc").stdout == expected

    header = tmp_path / "header.csv"
    header.write_text("code,name\nA,B\n")
    result = cli("agencies", "upload", "nc", str(header))
    assert (result.returncode, result.stderr) == (
        2, "error: header.csv: line 1: the header must be code,name,geoid\n")
    absent = cli("agencies", "upload", "nc", str(tmp_path / "absent.csv"))
    assert absent.returncode == 2
    assert "cannot read" in absent.stderr and "absent.csv" in absent.stderr


def test_census_refresh_follows_the_load_to_its_end(cli, db, start_service):
    from services.census.local_api import LocalCensusApi

    failing = {"on": False}
    with LocalCensusApi(responder=lambda count, path, params: (
            (500, "the census server is down") if failing["on"] else None)) as census_api:
        start_service("services.census", CENSUS_API_URL=census_api.url, CENSUS_YEARS="2022")
        result = cli("census", "refresh", "--year", "2022")
        assert result.returncode == 0, result.stderr
        request_id = re.match(r"census refresh requested: ([0-9a-f]{32})\n",
                              result.stdout)[1]
        count = db("SELECT count(*) FROM census.profiles WHERE year = 2022")[0][0]
        assert count > 0
        assert result.stdout.endswith(f"census profiles loaded: {count:,} counties, "
                                      "places and states\n")
        (payload,) = [row.payload for row in db(
            "SELECT payload FROM admin.outbox WHERE event_type = 'census_requested' "
            "AND payload->>'request_id' = :id", id=request_id)]
        assert payload["years"] == [2022]

        failing["on"] = True
        failed = cli("census", "refresh")
        assert failed.returncode == 1
        assert "error: the census refresh failed: " in failed.stderr
        assert "500" in failed.stderr
        # The profiles loaded before are kept.
        assert db("SELECT count(*) FROM census.profiles WHERE year = 2022")[0][0] == count

    refused = cli("census", "refresh", "--year", "1900")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: year: ")


def test_a_missing_or_refused_token_is_explained(cli):
    missing = cli("datasets", "list", ODP_TOKEN="")
    assert missing.returncode == 2
    assert "ODP_TOKEN" in missing.stderr and ".env" in missing.stderr
    assert "Traceback" not in missing.stderr and missing.stdout == ""

    wrong = cli("imports", "list", ODP_TOKEN=OPERATOR_TOKEN + "-wrong")
    assert wrong.returncode == 1
    assert "refused the token in ODP_TOKEN (HTTP 403" in wrong.stderr
    assert "Traceback" not in wrong.stderr and wrong.stdout == ""


def test_a_gateway_or_admin_service_down_names_odp_url(cli, start_service):
    closed = "http://127.0.0.1:9"
    result = cli("datasets", "list", ODP_URL=closed)
    assert result.returncode == 1
    assert f"ODP_URL={closed}" in result.stderr and "gateway is down" in result.stderr
    assert "Traceback" not in result.stderr

    start_service.stop_all("services.admin")
    result = cli("census", "refresh")
    assert result.returncode == 1
    assert f"ODP_URL={cli.base} is unavailable (HTTP 503" in result.stderr
    assert "the gateway or the admin service is down" in result.stderr
    assert "Traceback" not in result.stderr
