"""Public search through the live app: exact matches only, the right fields, nothing more."""

import pytest

from tests.canaries import NON_PUBLIC, PUBLIC
from tests.web.conftest import Live


@pytest.mark.parametrize(
    "body",
    [
        PUBLIC.by_a_number(),
        {"a_number": "A-300-000-001", "country_of_birth": "México"},
        {"a_number": "300000001", "country_of_birth": "MEX"},
        PUBLIC.by_name(),
        {"given_name": "MARISOL", "family_name": "quintanilla", "country_of_birth": "mx"},
        {**PUBLIC.by_name(), "date_of_birth": "1988-04-12"},
    ],
)
def test_a_public_person_is_found_by_exact_identifiers(live: Live, body: dict[str, str]) -> None:
    response = live.client.post("/api/v1/search", json=body)
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["name"] == "Marisol Quintanilla"
    assert result["custody_status"] == "in_custody"
    assert result["custody_status_text"] == "In custody"
    assert result["country_of_birth_name"] == "Mexico"
    assert result["facility"] == {
        "name": "Facility F1",
        "address": "1 Main St",
        "city": "Eloy",
        "state": "AZ",
        "postal_code": "85231",
        "phone": "520-555-0100",
    }
    assert len(result["reference"]) >= 20 and not result["reference"].isdigit()


def test_results_never_carry_birth_date_age_protection_ids_or_history(live: Live) -> None:
    text = live.client.post("/api/v1/search", json=PUBLIC.by_a_number()).text
    for forbidden in (
        "1988",
        "date_of_birth",
        "age",
        "protection",
        "cleared",
        "person_id",
        '"id"',
        "history",
        PUBLIC.a_number,
    ):
        assert forbidden not in text


@pytest.mark.parametrize(
    "body",
    [
        {"given_name": "Marisol", "family_name": "Quintanill", "country_of_birth": "MX"},
        {"given_name": "Mari", "family_name": "Quintanilla", "country_of_birth": "MX"},
        {"a_number": "300000001", "country_of_birth": "GT"},
        {**PUBLIC.by_name(), "date_of_birth": "1988-04-13"},
    ],
)
def test_near_misses_find_nothing(live: Live, body: dict[str, str]) -> None:
    response = live.client.post("/api/v1/search", json=body)
    assert (response.status_code, response.json()) == (200, {"results": []})


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        # In the order the page shows the fields.
        ({}, ["given_name", "family_name", "country_of_birth"]),
        ({"a_number": "12", "country_of_birth": "MX"}, ["a_number"]),
        ({"a_number": "300000001"}, ["country_of_birth"]),
        (
            {"given_name": "Mari*", "family_name": "Q%", "country_of_birth": "Atlantis"},
            ["given_name", "family_name", "country_of_birth"],
        ),
        ({**PUBLIC.by_name(), "date_of_birth": "12/04/1988"}, ["date_of_birth"]),
        (
            {"a_number": "300000001", "given_name": "Marisol", "country_of_birth": "MX"},
            ["a_number"],
        ),
        ({"a_number": "3" * 300, "country_of_birth": "MX"}, ["a_number"]),
        ({"a_number": 300000001, "country_of_birth": "MX"}, ["a_number"]),
        ({"surname": "x"}, ["surname"]),
    ],
)
def test_malformed_input_gets_field_level_messages(
    live: Live, body: dict[str, object], fields: list[str]
) -> None:
    response = live.client.post("/api/v1/search", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == fields
    assert all(e["message"] for e in errors)
    assert "Q%" not in response.text and "Mari*" not in response.text


def test_a_field_too_long_is_named_with_its_limit(live: Live) -> None:
    body = {"given_name": "Ana", "family_name": "x" * 101, "country_of_birth": "MX"}
    [error] = live.client.post("/api/v1/search", json=body).json()["errors"]
    assert error == {"field": "family_name", "message": "Family name: at most 100 characters."}
    spanish = live.client.post("/api/v1/search", json=body, headers={"Accept-Language": "es"})
    assert spanish.json()["errors"][0]["message"] == "Apellido(s): como máximo 100 caracteres."
    page = live.client.post("/", data={**body, "csrf_token": live.csrf()}).text
    assert page.count("Family name: at most 100 characters.") == 2  # summary and field


def test_the_page_shows_a_result_and_never_the_non_public(live: Live) -> None:
    token = live.csrf()
    page = live.client.post("/", data={**PUBLIC.by_a_number(), "csrf_token": token})
    assert page.status_code == 200
    assert "Marisol Quintanilla" in page.text and "Facility F1" in page.text
    for canary in NON_PUBLIC:
        for body in (canary.by_a_number(), canary.by_name()):
            page = live.client.post("/", data={**body, "csrf_token": token})
            assert page.status_code == 200 and 'class="result"' not in page.text
            assert "No one matched this search" in page.text


def test_page_errors_are_summarised_and_linked_to_their_fields(live: Live) -> None:
    token = live.csrf()
    page = live.client.post("/", data={"a_number": "12", "csrf_token": token})
    assert page.status_code == 422
    assert 'href="#a_number"' in page.text and 'href="#country_of_birth"' in page.text
    assert 'aria-invalid="true"' in page.text and 'id="a_number-error"' in page.text


def test_a_form_without_its_csrf_token_is_refused(live: Live) -> None:
    live.csrf()
    page = live.client.post("/", data=PUBLIC.by_a_number())
    assert page.status_code == 400 and "Marisol" not in page.text.split("<form")[0]
    assert 'class="result"' not in page.text
