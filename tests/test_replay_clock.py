"""A standby's lag for /health: replay that moves is not lag, replay that stalls is, whatever PostgreSQL's clock says.

The clock is driven by hand here; the real standby's 503 past the bound is in ``test_scale_out.py``.
"""

from __future__ import annotations

from crimemap.store.postgis.replay import ReplayClock, lsn


class Hand:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_wal_position_reads_as_its_number() -> None:
    assert lsn("0/0") == 0
    assert lsn("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert lsn("1/0") > lsn("0/FFFFFFFF")


def test_a_standby_that_has_replayed_all_it_received_has_no_lag() -> None:
    clock = ReplayClock(Hand())
    assert clock.lag(received=500, replayed=500, since_last_commit=3600.0) == 0.0


def test_the_first_look_at_a_standby_behind_is_postgresqls_own_measure() -> None:
    clock = ReplayClock(Hand())
    assert clock.lag(received=900, replayed=500, since_last_commit=12.5) == 12.5


def test_a_long_load_replaying_as_it_streams_is_not_lag_though_no_transaction_has_committed_for_minutes() -> None:
    hand = Hand()
    clock = ReplayClock(hand)
    clock.lag(received=1_000, replayed=1_000, since_last_commit=5.0)
    for step in range(1, 60):  # five minutes of a load: WAL keeps coming, replay keeps following it
        hand.now += 5
        lag = clock.lag(received=1_000 + step * 100, replayed=1_000 + step * 100 - 30, since_last_commit=5.0 + step * 5)
        assert lag == 0.0


def test_replay_that_stops_moving_while_wal_waits_lags_from_when_it_last_moved() -> None:
    hand = Hand()
    clock = ReplayClock(hand)
    assert clock.lag(received=1_000, replayed=1_000, since_last_commit=1.0) == 0.0
    hand.now += 2
    assert clock.lag(received=1_400, replayed=1_000, since_last_commit=3.0) == 2.0
    hand.now += 7
    assert clock.lag(received=1_900, replayed=1_000, since_last_commit=10.0) == 9.0
    hand.now += 1
    assert clock.lag(received=1_900, replayed=1_200, since_last_commit=11.0) == 0.0  # moving again
    hand.now += 1
    assert clock.lag(received=1_900, replayed=1_900, since_last_commit=0.2) == 0.0


def test_the_lag_is_never_more_than_the_time_since_the_last_replayed_commit() -> None:
    hand = Hand()
    clock = ReplayClock(hand)
    clock.lag(received=1_000, replayed=1_000, since_last_commit=0.0)
    hand.now += 30
    assert clock.lag(received=1_100, replayed=1_000, since_last_commit=4.0) == 4.0
