"""Feedback is stored durably before the 200, duplicates tolerated, bad input refused."""

from __future__ import annotations

from cds_service.store import Database, FeedbackLog

ACCEPTED = {
    "card": "card-1",
    "outcome": "accepted",
    "acceptedSuggestions": [{"id": "sugg-1"}],
    "outcomeTimestamp": "2026-11-21T13:28:36.836Z",
}
OVERRIDDEN = {
    "card": "card-1",
    "outcome": "overridden",
    "outcomeTimestamp": "2026-11-21T13:29:01Z",
    "overrideReason": {
        "reason": {"code": "not-now", "system": "http://example.org/override"},
        "userComment": "Discussed with Mrs X",
    },
}
URL = "/cds-services/aimss-patient-view/feedback"


def test_every_item_is_stored_before_the_answer(client, tmp_path):
    response = client.post(URL, json={"feedback": [ACCEPTED, OVERRIDDEN]})
    assert response.status_code == 200
    rows = FeedbackLog(Database(f"sqlite:///{tmp_path}/aimss.db")).rows()  # a separate connection
    by_outcome = {row["outcome"]: row for row in rows}
    assert by_outcome["accepted"]["accepted_suggestions"] == '["sugg-1"]'
    assert by_outcome["accepted"]["service_id"] == "aimss-patient-view"
    assert by_outcome["overridden"]["override_code"] == "not-now"
    assert by_outcome["overridden"]["outcome_timestamp"] == "2026-11-21T13:29:01Z"


def test_free_text_comments_are_not_stored(client, tmp_path):
    client.post(URL, json={"feedback": [OVERRIDDEN]})
    (row,) = FeedbackLog(Database(f"sqlite:///{tmp_path}/aimss.db")).rows()
    assert row["override_has_comment"] is True
    assert "Mrs X" not in repr(row)


def test_duplicates_are_tolerated(client, tmp_path):
    for _ in range(3):
        assert client.post(URL, json={"feedback": [ACCEPTED]}).status_code == 200
    assert FeedbackLog(Database(f"sqlite:///{tmp_path}/aimss.db")).count() == 1


def test_sqlite_runs_in_wal_mode_feedback_with_full_sync(tmp_path):
    database = Database(f"sqlite:///{tmp_path}/wal.db")
    for engine, synchronous in ((database.durable, 2), (database.fast, 1)):  # FULL, NORMAL
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == synchronous


def test_accepted_without_suggestions_is_400(client):
    item = {k: v for k, v in ACCEPTED.items() if k != "acceptedSuggestions"}
    response = client.post(URL, json={"feedback": [item]})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_bad_timestamp_and_empty_list_are_400(client):
    assert client.post(URL, json={"feedback": [ACCEPTED | {"outcomeTimestamp": "yesterday"}]}).status_code == 400
    assert client.post(URL, json={"feedback": []}).status_code == 400


def test_feedback_for_an_unknown_service_is_404(client):
    response = client.post("/cds-services/nope/feedback", json={"feedback": [ACCEPTED]})
    assert response.status_code == 404
