"""The API root: token auth and JSON errors."""

import logging

import pytest

from console.services import api_token_create


def test_whoami_answers_for_the_token_tenant(cast, client):
    issued = api_token_create(tenant=cast.acme, name="ci", actor=cast.admin)
    response = client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert response.status_code == 200
    assert response.json() == {"tenant": "acme", "tenant_name": "Acme", "token_name": "ci", "user": "ada",
                               "scopes": ["runs:read", "runs:write", "approvals:write", "memory:write", "costs:read",
                                          "admin"]}


def test_a_missing_or_wrong_token_gets_401_with_a_message(cast, client):
    for header in [{}, {"HTTP_AUTHORIZATION": "Bearer nope"}, {"HTTP_AUTHORIZATION": "Bearer prt_" + "x" * 500}]:
        response = client.get("/api/v1/whoami", **header)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"
        assert "Bearer" in response.json()["message"]


def test_the_openapi_schema_is_served(db, client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Proctor API"


def test_an_unknown_api_path_is_json_404(db, client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404


# --- Errors: always JSON {code, message}, every status documented -----------------------------------------

@pytest.fixture
def token(cast):
    return api_token_create(tenant=cast.acme, name="ci", actor=cast.admin).secret


def test_an_unknown_api_path_is_json_not_found_for_every_method(db, client, token):
    for method, path in [("get", "/api/v1/nothing-here"), ("post", "/api/v1/runs/1/nothing"),
                         ("delete", "/api/v1/"), ("get", "/api/v2/runs")]:
        response = getattr(client, method)(path, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 404 and response["Content-Type"].startswith("application/json"), path
        assert response.json()["code"] == "not_found" and "/api/v1/docs" in response.json()["message"]


def test_a_method_not_allowed_is_json_and_says_which_are(db, client, token):
    response = client.delete("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 405 and response["Allow"] == "GET"
    assert response.json() == {"code": "method_not_allowed", "message": "DELETE is not allowed here; allowed: GET."}


@pytest.mark.parametrize("debug", [False, True])
def test_a_crash_is_json_500_with_the_traceback_in_the_log_only(cast, client, token, monkeypatch, caplog, settings,
                                                                debug):
    """A failure injected into the runs list stands for any bug: the client learns nothing of our code."""
    settings.DEBUG = debug

    def broken(**kwargs):
        raise RuntimeError("secret detail of our code")

    monkeypatch.setattr("agents.api.run_list", broken)
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/v1/runs", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 500 and response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "server_error" and "secret detail" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    logged = [r for r in caplog.records if r.exc_info and "secret detail" in str(r.exc_info[1])]
    assert len(logged) == 1 and "/api/v1/runs" in logged[0].getMessage()


def test_every_operation_documents_its_errors_with_the_error_shape(db, client):
    schema = client.get("/api/v1/openapi.json").json()
    error = "#/components/schemas/Error"
    assert {"code", "message"} <= set(schema["components"]["schemas"]["Error"]["properties"])
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("400", "401", "413", "422", "500"):
                assert responses[status]["content"]["application/json"]["schema"]["$ref"] == error, (method, path, status)
            if "{" in path:
                assert "404" in responses, (method, path)
