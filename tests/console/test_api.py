"""The API root: token auth and JSON errors."""

from console.services import api_token_create


def test_whoami_answers_for_the_token_tenant(cast, client):
    issued = api_token_create(tenant=cast.acme, name="ci", actor=cast.admin)
    response = client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert response.status_code == 200
    assert response.json() == {"tenant": "acme", "tenant_name": "Acme", "token_name": "ci"}


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
