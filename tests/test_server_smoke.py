"""The server starts on a store and answers its health check with what it holds."""

from __future__ import annotations

from conftest import LiveServer


def test_health_lists_stored_months_and_tables(policeuk_server: LiveServer) -> None:
    body = policeuk_server.client.get("/health").json()
    assert body["status"] == "ok"
    assert body["latest_month"] == "2020-01"
    march_2016 = next(m for m in body["months"] if m["month"] == "2016-03")
    assert march_2016["forces"] == ["city-of-london", "cumbria"]
    assert any(t["id"] == "policeuk-crimes" for t in body["tables"])
