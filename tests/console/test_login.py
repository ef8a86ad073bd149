"""Logging in: password guessing is stopped after a few failures, with a message that says so."""

from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD


def log_in(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_the_fifth_failure_blocks_logging_in_even_with_the_right_password_and_the_page_says_so(cast):
    guesser = Client()
    for guess in ["123456", "password", "rita2024", "qwerty"]:
        failed = log_in(guesser, "rita", guess)
        assert failed.status_code == 200 and "Please enter a correct username and password" in failed.content.decode()
    fifth = log_in(guesser, "rita", "letmein")
    assert fifth.status_code == 429 and "Too many failed logins" in fifth.content.decode()

    blocked = log_in(guesser, "rita", PASSWORD)
    page = blocked.content.decode()
    assert blocked.status_code == 429
    assert "Too many failed logins" in page and "blocked for 15 minutes" in page and 'value="rita"' in page
    assert guesser.get(reverse("home")).status_code == 302  # not logged in: back to the login page

    other = log_in(guesser, "ada", PASSWORD)  # another account is not locked by rita's failures
    assert other.status_code == 302 and other.url == reverse("home")


def test_a_success_before_the_limit_starts_the_count_again(cast):
    person = Client()
    for _ in range(4):
        log_in(person, "rita", "typo")
    assert log_in(person, "rita", PASSWORD).status_code == 302
    person.post(reverse("logout"))
    for _ in range(4):
        log_in(person, "rita", "typo")
    assert log_in(person, "rita", PASSWORD).status_code == 302
