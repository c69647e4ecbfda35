"""PATCH /api/params with the augmentation and evaluation options: flip true, false or
"alternate", shift_fill and tta; anything else is a 422 naming the field and changes nothing."""

from __future__ import annotations

import pytest

from tests.server.conftest import assert_error, fingerprint, presenter


def test_the_options_apply_and_show_in_the_settings(client):
    before = client.get("/api/state").json()["settings"]
    assert (before["flip"], before["shift_fill"], before["tta"]) == (True, "zero", "none")
    for body in ({"flip": "alternate"}, {"shift_fill": "reflect"}, {"tta": "flip_translate"},
                 {"flip": False, "tta": "flip"}):
        response = client.patch("/api/params", json=body, headers=presenter())
        assert response.status_code == 200, response.text
        settings = response.json()["settings"]
        assert all(settings[k] == v and type(settings[k]) is type(v) for k, v in body.items())
    assert client.get("/api/state").json()["settings"]["shift_fill"] == "reflect"
    restore = {"flip": True, "shift_fill": "zero", "tta": "none"}
    assert client.patch("/api/params", json=restore, headers=presenter()).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"flip": "sometimes"}, "flip"), ({"flip": "true"}, "flip"), ({"flip": 1}, "flip"),
    ({"flip": None}, "flip"), ({"shift_fill": "edge"}, "shift_fill"),
    ({"shift_fill": 0}, "shift_fill"), ({"tta": "mirror"}, "tta"), ({"tta": True}, "tta"),
    ({"tta": "flip", "learning_rate": -1}, "learning_rate"),       # all or nothing
])
def test_bad_values_are_422_naming_the_field_and_change_nothing(client, body, field):
    before = fingerprint(client)
    error = assert_error(client.patch("/api/params", json=body, headers=presenter()), 422)
    assert error["field"] == field, error
    assert fingerprint(client) == before


def test_the_openapi_schema_lists_the_choices(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    params = next(s for name, s in schemas.items() if name.startswith("ParamsBody"))
    flip = params["properties"]["flip"]["anyOf"]
    assert {"type": "boolean"} in flip and {"type": "string", "const": "alternate"} in flip
    assert params["properties"]["tta"]["anyOf"][0]["enum"] == ["none", "flip", "flip_translate"]
    assert params["properties"]["shift_fill"]["anyOf"][0]["enum"] == ["zero", "reflect"]
