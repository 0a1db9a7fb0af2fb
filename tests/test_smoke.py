"""The app starts on a migrated database and the sign-in flow works end to end."""

from tests.conftest import sign_in


def test_sign_in_then_list_shows_premises(client, world):
    sign_in(client, world["officer"])
    page = client.get("/premises").get_data(as_text=True)
    assert "The Crown" in page and "The Swan" in page


def test_healthz_is_public_and_checks_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "up"}
