"""The harvest's HTTP client and state file: pacing, 429s, retries, and resumable units of work."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crimemap.harvest.http import HarvestClient, HarvestError, RateLimiter, RetryPolicy, retry_after
from crimemap.harvest.state import HarvestState, StateMismatch, default_state_path
from crimemap.harvest.tiling import POLICEUK_RETRY


class FakeTime:
    """A clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client_for(
    answers: list[httpx.Response | Exception], fake: FakeTime, **kwargs: object
) -> tuple[HarvestClient, list[float]]:
    """A client whose server gives ``answers`` in turn; also returns the (fake) times requests were sent."""
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(fake.now)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    options: dict[str, object] = {"rate": None, "policy": RetryPolicy(jitter=0.0)} | kwargs
    client = HarvestClient(
        "http://remote.test/api",
        transport=httpx.MockTransport(handler),
        sleep=fake.sleep,
        clock=fake.clock,
        **options,  # type: ignore[arg-type]
    )
    return client, sent


def test_429_waits_for_retry_after_then_asks_again() -> None:
    fake = FakeTime()
    client, sent = client_for([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json=[])], fake)
    response = client.request("GET", "/crimes-street/all-crime")
    assert response.status_code == 200
    assert sent == [0.0, 3.0]
    assert client.stats.throttled == 1 and client.stats.requests == 2


def test_retry_after_may_be_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    wait = retry_after(httpx.Response(429, headers={"Retry-After": later}))
    assert wait is not None and 28 <= wait <= 30
    assert retry_after(httpx.Response(429)) is None


def test_429_without_retry_after_backs_off_exponentially() -> None:
    fake = FakeTime()
    client, sent = client_for([httpx.Response(429)] * 3 + [httpx.Response(200)], fake)
    assert client.request("GET", "/forces").status_code == 200
    assert sent == [0.0, 0.5, 1.5, 3.5]


def test_a_retry_after_too_long_stops_the_harvest_with_advice() -> None:
    fake = FakeTime()
    client, _ = client_for([httpx.Response(429, headers={"Retry-After": "86400"})], fake)
    with pytest.raises(HarvestError, match="run the same command later"):
        client.request("GET", "/forces")


def test_server_errors_are_retried_with_exponential_backoff() -> None:
    fake = FakeTime()
    client, sent = client_for([httpx.Response(503), httpx.Response(502), httpx.Response(200)], fake)
    assert client.request("GET", "/features").status_code == 200
    assert sent == [0.0, 0.5, 1.5]
    assert client.stats.retries == 2


def test_connection_errors_are_retried() -> None:
    fake = FakeTime()
    refused = httpx.ConnectError("connection refused")
    client, sent = client_for([refused, httpx.ReadTimeout("slow"), httpx.Response(200)], fake)
    assert client.request("GET", "/forces").status_code == 200
    assert len(sent) == 3


def test_a_server_that_cannot_be_reached_is_an_error_after_max_attempts() -> None:
    fake = FakeTime()
    client, sent = client_for([httpx.ConnectError("refused")] * 3, fake, policy=RetryPolicy(max_attempts=3, jitter=0.0))
    with pytest.raises(HarvestError, match="cannot reach http://remote.test/api/forces.*tried 3 times"):
        client.request("GET", "/forces")
    assert sent == [0.0, 0.5, 1.5]


def test_retries_running_out_return_the_last_answer() -> None:
    fake = FakeTime()
    client, sent = client_for([httpx.Response(500)] * 2, fake, policy=RetryPolicy(max_attempts=2, jitter=0.0))
    assert client.request("GET", "/forces").status_code == 500
    assert len(sent) == 2


def test_police_uk_503_is_not_retried_it_means_too_many_crimes() -> None:
    fake = FakeTime()
    client, sent = client_for([httpx.Response(503)], fake, retry=POLICEUK_RETRY)
    assert client.request("GET", "/crimes-street/all-crime").status_code == 503
    assert len(sent) == 1


def test_client_errors_are_not_retried() -> None:
    fake = FakeTime()
    client, sent = client_for([httpx.Response(404)], fake)
    assert client.request("GET", "/nowhere").status_code == 404
    assert len(sent) == 1


def test_rate_limiter_spaces_requests_evenly() -> None:
    fake = FakeTime()
    client, sent = client_for([httpx.Response(200)] * 4, fake, rate=4.0)
    for _ in range(4):
        client.request("GET", "/forces")
    assert sent == [0.0, 0.25, 0.5, 0.75]


def test_rate_limiter_pause_holds_every_request_back() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10.0, clock=fake.clock, sleep=fake.sleep)
    limiter.wait()
    limiter.pause(2.0)
    assert limiter.wait() == 2.0


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="more than 0"):
        RateLimiter(0.0)


# -- the state file -------------------------------------------------------------------------------------

JOB = {"api": "police.uk", "url": "http://remote.test/api", "months": ["2017-01"]}


def test_state_keeps_finished_units_and_their_records_across_runs(tmp_path: Path) -> None:
    path = tmp_path / "s.harvest.sqlite"
    with HarvestState(path, JOB) as state:
        assert not state.resumed
        state.commit("2017-01/r0c0", group="2017-01", records=[("1", b"a"), ("2", b"b")])
        state.commit("2017-01/r0c1", group="2017-01", records=[("2", b"b"), ("3", b"c")])
        state.commit("2017-01/r1c0", status="split")
        state.set("published", ["2017-01"])
    with HarvestState(path, JOB) as state:
        assert state.resumed
        assert state.status("2017-01/r0c0") == "done" and state.status("2017-01/r1c0") == "split"
        assert state.status("2017-01/r1c1") is None
        assert list(state.records("2017-01")) == [b"a", b"b", b"c"]  # a crime seen by two tiles, once
        assert state.get("published") == ["2017-01"]
        state.commit("2017-01/written", drop="2017-01")
        assert state.count("2017-01") == 0


def test_a_unit_is_recorded_with_its_records_or_not_at_all(tmp_path: Path) -> None:
    def records() -> Iterator[tuple[str, bytes]]:
        yield ("1", b"x")
        raise KeyboardInterrupt  # Ctrl-C while the unit is being saved

    with HarvestState(tmp_path / "s", JOB) as state:
        with pytest.raises(KeyboardInterrupt):
            state.commit("u", group="g", records=records())
        assert state.status("u") is None and state.count("g") == 0


def test_a_state_file_of_another_harvest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    HarvestState(path, JOB).close()
    with pytest.raises(StateMismatch, match="another request.*--restart"):
        HarvestState(path, {**JOB, "months": ["2017-02"]})
    with HarvestState(path, {**JOB, "months": ["2017-02"]}, restart=True) as state:
        assert not state.resumed


def test_finish_deletes_the_state_file(tmp_path: Path) -> None:
    state = HarvestState(tmp_path / "s", JOB)
    state.finish()
    assert list(tmp_path.iterdir()) == []


def test_the_state_file_lives_beside_a_sqlite_store() -> None:
    assert default_state_path("/data/crimes.sqlite") == Path("/data/crimes.sqlite.harvest.sqlite")
    pg = default_state_path("postgresql://u@db/crimes")
    assert pg.parent == Path(".") and pg.name.endswith(".harvest.sqlite")
