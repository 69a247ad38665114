"""Configuration problems as an operator meets them: one line naming the setting and what is
wrong, a non-zero exit, no traceback; ``aimss-cds check`` with one line per check; unknown
``AIMSS_*`` variables warned; one start-up line with the effective configuration, no secrets."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from cds_service import configuration, logs
from cds_service.configuration import ConfigurationError, Effective
from cds_service.settings import Settings
from cds_service.web import worker
from cds_service.web.app import create_app
from tests.conftest import _free_port
from tests.signing import ISSUER, write_issuers_file

REFUSED_DATABASE = "postgresql://aimss:pw-SECRET-7Q@127.0.0.1:{port}/aimss"


def aimss(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``aimss-cds`` in a clean environment: no AIMSS_* variable but the ones given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIMSS_")}
    return subprocess.run([sys.executable, "-m", "cds_service", *args], cwd=cwd, env=clean | env,
                          capture_output=True, text=True, timeout=60)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.splitlines()
    return line


def test_version_comes_from_the_package_metadata(tmp_path):
    result = aimss("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"aimss-cds {version('aimss-cds')}"


@pytest.mark.parametrize(("variable", "value", "problem"), [
    ("AIMSS_HOOK_DEADLINE", "-1", "greater than 0"),
    ("AIMSS_FHIR_MAX_PAGES", "many", "valid integer"),
    ("AIMSS_LOG_LEVEL", "LOUD", "one of CRITICAL, ERROR, WARNING, INFO, DEBUG"),
    ("AIMSS_LOG_FORMAT", "xml", "'text' or 'json'"),
    ("AIMSS_AUTH_DISABLED", "perhaps", "valid boolean"),
    ("AIMSS_PUBLIC_BASE_URL", "cds.example.org", "absolute http(s) URL"),
    ("AIMSS_PUBLIC_BASE_URL", "https://cds.example.org/?x=1", "not have a query"),
])
def test_an_invalid_value_stops_serve_with_one_line_naming_it(tmp_path, variable, value, problem):
    result = aimss("serve", cwd=tmp_path, **{variable: value})
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith(f"aimss-cds: cannot start: {variable}: ") and problem in line
    assert not (tmp_path / ".data").exists()


def test_a_secret_value_is_never_repeated(tmp_path):
    result = aimss("serve", cwd=tmp_path, AIMSS_FHIR_REQUEST_TIMEOUT="pw-SECRET-7Q")
    assert "pw-SECRET-7Q" not in result.stderr + result.stdout
    assert "AIMSS_FHIR_REQUEST_TIMEOUT" in one_line(result)


@pytest.mark.parametrize(("content", "problem"), [
    (None, "No such file or directory"),
    ("{not json", "cannot read JSON"),
    ('{"issuers": []}', "at least one issuer"),
    ('{"issuers": [{"iss": "https://ehr.example.org"}]}', "issuers[0]"),
])
def test_a_missing_or_invalid_issuers_file_is_one_line(tmp_path, content, problem):
    issuers = tmp_path / "issuers.json"
    if content is not None:
        issuers.write_text(content)
    result = aimss("serve", cwd=tmp_path, AIMSS_TRUSTED_ISSUERS_FILE=str(issuers))
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("aimss-cds: cannot start: AIMSS_TRUSTED_ISSUERS_FILE: ")
    assert problem in line and str(issuers) in line


def test_an_unreachable_postgresql_is_one_line_without_the_password(tmp_path):
    url = REFUSED_DATABASE.format(port=_free_port())
    result = aimss("serve", cwd=tmp_path, AIMSS_DATABASE_URL=url)
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("aimss-cds: cannot start: AIMSS_DATABASE_URL: postgresql://aimss:***@")
    assert "refused" in line.lower()
    assert "pw-SECRET-7Q" not in result.stderr


def test_an_sqlite_database_in_a_missing_folder_is_one_line(tmp_path):
    result = aimss("serve", cwd=tmp_path, AIMSS_DATABASE_URL=f"sqlite:///{tmp_path}/no/such/a.db")
    assert result.returncode == 2
    assert f"the folder {tmp_path}/no/such does not exist" in one_line(result)
    assert not (tmp_path / "no").exists()


def test_a_broken_site_rules_file_names_its_setting(tmp_path):
    rules = tmp_path / "site.toml"
    rules.write_text("[bone-density-scan]\ndxa_interval_month = 12\n")
    result = aimss("serve", cwd=tmp_path, AIMSS_RULES_FILE=str(rules))
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("aimss-cds: cannot start: AIMSS_RULES_FILE: ") and f"{rules}: invalid rules" in line


def check_lines(result: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    assert "Traceback" not in result.stderr, result.stderr
    lines: dict[str, list[str]] = {"ok": [], "warn": [], "FAIL": []}
    for line in result.stdout.splitlines():
        status, _, text = line.partition(" ")
        lines[status].append(text.strip())
    return lines


def test_check_of_a_sound_configuration_says_ok_for_each_part(tmp_path):
    env = {"AIMSS_TRUSTED_ISSUERS_FILE": str(write_issuers_file(tmp_path)),
           "AIMSS_PUBLIC_BASE_URL": "https://cds.example.org",
           "AIMSS_DATABASE_URL": f"sqlite:///{tmp_path}/aimss.db"}
    result = aimss("check", cwd=tmp_path, **env)
    assert result.returncode == 0, result.stdout
    lines = check_lines(result)
    assert lines["FAIL"] == [] and lines["warn"] == []
    ok = "\n".join(lines["ok"])
    for expected in ("settings: every AIMSS_* value is valid", "AIMSS_PROFILES_DIR: knowledge OK",
                     f"AIMSS_TRUSTED_ISSUERS_FILE: 1 trusted issuer(s): {ISSUER}",
                     f"AIMSS_DATABASE_URL: sqlite:///{tmp_path}/aimss.db does not exist yet",
                     "AIMSS_PUBLIC_BASE_URL: https://cds.example.org"):
        assert expected in ok
    assert not (tmp_path / "aimss.db").exists()  # check creates nothing


def test_check_reports_every_problem_and_exits_1(tmp_path):
    env = {"AIMSS_TRUSTED_ISSUERS_FILE": str(tmp_path / "missing.json"),
           "AIMSS_DATABASE_URL": REFUSED_DATABASE.format(port=_free_port()),
           "AIMSS_PUBLIC_BASE_URL": "http://cds.example.org",
           "AIMSS_ALLOW_OPEN_FHIR": "1", "AIMSS_DATABSE_URL": "sqlite:///x.db"}
    result = aimss("check", cwd=tmp_path, **env)
    assert result.returncode == 1
    lines = check_lines(result)
    assert [line.split(":")[0] for line in lines["FAIL"]] == ["AIMSS_TRUSTED_ISSUERS_FILE", "AIMSS_DATABASE_URL"]
    assert "refused" in lines["FAIL"][1].lower() and "pw-SECRET-7Q" not in result.stdout
    warned = "\n".join(lines["warn"])
    assert "AIMSS_DATABSE_URL is not a setting of AIMSS CDS and is ignored; did you mean AIMSS_DATABASE_URL?" in warned
    assert "AIMSS_PUBLIC_BASE_URL: http://cds.example.org is plain http" in warned
    assert "AIMSS_ALLOW_OPEN_FHIR=1" in warned


def test_check_of_invalid_settings_lists_each(tmp_path):
    result = aimss("check", cwd=tmp_path, AIMSS_HOOK_DEADLINE="0", AIMSS_LOG_LEVEL="LOUD")
    assert result.returncode == 1
    failed = check_lines(result)["FAIL"]
    assert sorted(line.split(":")[0] for line in failed) == ["AIMSS_HOOK_DEADLINE", "AIMSS_LOG_LEVEL"]


def test_check_takes_a_write_on_an_existing_database(tmp_path):
    database = tmp_path / "aimss.db"
    database.write_text("not a database")
    result = aimss("check", cwd=tmp_path, AIMSS_DATABASE_URL=f"sqlite:///{database}")
    failed = check_lines(result)["FAIL"]
    assert result.returncode == 1
    assert failed == [f"AIMSS_DATABASE_URL: sqlite:///{database}: file is not a database"]


def test_unknown_variables_are_warned_with_the_closest_setting():
    environ = {"AIMSS_DATABSE_URL": "x", "AIMSS_LOG_LEVEL": "INFO", "AIMSS_TOTALLY_NEW": "1",
               "PATH": "/bin"}
    assert configuration.unknown_variables(environ) == [
        "AIMSS_DATABSE_URL is not a setting of AIMSS CDS and is ignored; did you mean AIMSS_DATABASE_URL?",
        "AIMSS_TOTALLY_NEW is not a setting of AIMSS CDS and is ignored",
    ]


def test_the_effective_configuration_line_holds_no_secret(tmp_path):
    settings = Settings(database_url="postgresql://aimss:pw-SECRET-7Q@db.internal/aimss",
                        patient_hash_key="hash-SECRET-9", public_base_url="https://cds.example.org")
    issuers = configuration.trusted_issuers(
        Settings(trusted_issuers_file=write_issuers_file(tmp_path)))
    line = Effective(settings, issuers, workers=4).line()
    assert "SECRET" not in line
    for part in ("database=postgresql://aimss:***@db.internal/aimss", f"issuers={ISSUER}",
                 "public_base_url=https://cds.example.org", "auth=jwt", "open_fhir=no", "workers=4",
                 "patient_hash_key=set"):
        assert part in line


def test_serve_logs_the_unknown_variables_and_the_effective_configuration_once(tmp_path):
    """Up to the point uvicorn takes over: the lines come from the parent, before any worker."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIMSS_")}
    env = clean | {"AIMSS_TRUSTED_ISSUERS_FILE": str(write_issuers_file(tmp_path)),
                   "AIMSS_PUBLIC_BASE_URL": "https://cds.example.org", "AIMSS_LOG_FORMAT": "json",
                   "AIMSS_PUBLIC_BASE_ULR": "typo"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cds_service", "serve", "--port", str(_free_port()), "--workers", "2"],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stderr is not None
        lines = []
        for raw in process.stderr:
            lines.append(json.loads(raw))
            if lines[-1]["message"].startswith("configuration:"):
                break
    finally:
        process.terminate()
        process.wait(timeout=30)
    warning, startup = lines[-2], lines[-1]
    assert warning["level"] == "WARNING" and "did you mean AIMSS_PUBLIC_BASE_URL?" in warning["message"]
    assert startup["level"] == "INFO" and startup["logger"] == "aimss_cds"
    assert startup["hookInstance"] == "-"
    for part in ("database=sqlite:///.data/aimss-cds.db", f"issuers={ISSUER}", "workers=2",
                 "public_base_url=https://cds.example.org", "auth=jwt"):
        assert part in startup["message"]
    assert (tmp_path / ".data" / "aimss-cds.db").exists()  # the default location, created


def test_create_app_names_the_setting_of_a_bad_issuers_file(tmp_path):
    settings = Settings(trusted_issuers_file=tmp_path / "absent.json",
                        database_url=f"sqlite:///{tmp_path}/a.db")
    with pytest.raises(ConfigurationError, match=r"^AIMSS_TRUSTED_ISSUERS_FILE: .*absent\.json"):
        create_app(settings)


def test_a_worker_that_finds_a_problem_logs_one_line_and_exits_as_uvicorn_expects(
    tmp_path, monkeypatch, caplog
):
    for name in [name for name in os.environ if name.startswith("AIMSS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AIMSS_DATABASE_URL", REFUSED_DATABASE.format(port=_free_port()))
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exited:
        worker.app()
    assert exited.value.code == 3  # uvicorn's STARTUP_FAILURE: the parent stops, no restart loop
    (record,) = [r for r in caplog.records if r.name == "aimss_cds"]
    assert record.getMessage().startswith("cannot start: AIMSS_DATABASE_URL: postgresql://aimss:***@")
    assert record.exc_info is None


def test_json_log_lines_are_one_object_with_the_hook_instance():
    record = logging.LogRecord("aimss_cds", logging.WARNING, __file__, 1, "hook status=%d\nnext", (412,), None)
    record.hookInstance = "hi-1"
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed | {"time": "-"} == {"time": "-", "level": "WARNING", "logger": "aimss_cds",
                                       "hookInstance": "hi-1", "message": "hook status=412\nnext"}
    assert parsed["time"].endswith("+00:00")
