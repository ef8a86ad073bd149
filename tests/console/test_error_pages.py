"""What a person sees when something fails: a plain page, never a traceback (DEBUG is off unless DEBUG=1 is set,
under `make run` too); the traceback is in the server's log."""

import logging

from django.test import Client


def test_a_failing_page_is_the_plain_500_page_and_the_traceback_is_logged(cast, monkeypatch, caplog):
    """A failure injected into the runs list stands for any bug."""

    def broken(**kwargs):
        raise RuntimeError("secret detail of our code")

    monkeypatch.setattr("agents.views.run_page", broken)
    client = Client(raise_request_exception=False)
    client.force_login(cast.member)
    with caplog.at_level(logging.ERROR):
        response = client.get("/t/acme/runs/")
    page = response.content.decode()
    assert response.status_code == 500 and "Something went wrong on our side" in page
    assert "secret detail" not in page and "Traceback" not in page
    assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records)


def test_a_request_django_refuses_gets_the_plain_400_page(db, client):
    response = client.get("/login/", HTTP_HOST="evil.example")  # not in ALLOWED_HOSTS
    assert response.status_code == 400 and "This request was refused" in response.content.decode()
