"""Budget: per-scope limits checked before calls, counted from recorded events, seeded from stores."""

from __future__ import annotations

import threading
import time
import warnings
from datetime import UTC, datetime, timedelta

import pytest

from a2a_llm_tracker import (
    Budget,
    BudgetExceededError,
    ConfigurationError,
    Meter,
    PricingRegistry,
    meter_context,
)
from a2a_llm_tracker._budget import BudgetWarning
from a2a_llm_tracker.sinks.jsonl import JSONLSink
from a2a_llm_tracker.sinks.sqlite import SQLiteSink
from tests.report import _data

COST = 0.003  # one call below: 1000 in * $2/M + 125 out * $8/M


def _pricing() -> PricingRegistry:
    p = PricingRegistry()
    p.set_price("openai", "gpt-4.1", 2.0, 8.0)
    return p


def _call(meter: Meter, **attribution) -> None:
    """What a wrapper does: check the budgets, 'call the model', record the usage."""
    meter.check_budgets(**attribution)
    meter.record(provider="openai", model="gpt-4.1", input_tokens=1000, output_tokens=125, **attribution)


class TestLimits:
    def test_raises_once_spend_reaches_the_limit(self):
        budget = Budget(0.01, scope="session")
        meter = Meter(pricing=_pricing(), budgets=[budget])
        made = 0
        with meter_context(session_id="s1"):
            with pytest.raises(BudgetExceededError) as info:
                for _ in range(10):
                    _call(meter)
                    made += 1
        assert made == 4  # 0, .003, .006, .009 are under $0.01; the 5th check sees $0.012
        err = info.value
        assert (err.scope, err.key, err.limit_usd) == ("session", "s1", 0.01)
        assert err.spent_usd == pytest.approx(0.012)
        assert "session 's1' spent $0.012000" in str(err)
        assert budget.spent("s1") == pytest.approx(0.012) and budget.remaining("s1") == 0.0
        assert budget.exceeded("s1")

    def test_each_scope_key_has_its_own_total(self):
        budget = Budget(0.005, scope="agent")
        meter = Meter(pricing=_pricing(), budgets=[budget])
        _call(meter, agent_id="a")
        _call(meter, agent_id="a")
        with pytest.raises(BudgetExceededError):
            _call(meter, agent_id="a")
        _call(meter, agent_id="b")  # b has spent nothing yet
        _call(meter)  # no agent: not limited by an agent budget
        assert budget.keys() == ["a", "b"] and budget.spent() == pytest.approx(3 * COST)

    def test_key_limits_only_that_key(self):
        budget = Budget(0.001, scope="user", key="u1")
        meter = Meter(pricing=_pricing())
        meter.add_budget(budget)
        _call(meter, user_id="u1")
        _call(meter, user_id="u2")
        _call(meter, user_id="u2")
        with pytest.raises(BudgetExceededError):
            _call(meter, user_id="u1")
        _call(meter, user_id="u2")
        assert budget.keys() == ["u1"] and budget.spent() == pytest.approx(COST)

    def test_project_scope_uses_the_meter_default(self):
        budget = Budget(0.004, scope="project")
        meter = Meter(pricing=_pricing(), project="alpha", budgets=[budget])
        _call(meter)
        _call(meter)
        with pytest.raises(BudgetExceededError) as info:
            _call(meter)
        assert info.value.key == "alpha"

    def test_unpriced_events_add_nothing_but_are_counted(self):
        budget = Budget(0.001, scope="session", key="s")
        meter = Meter(pricing=_pricing(), budgets=[budget])
        for _ in range(3):
            meter.check_budgets(session_id="s")
            meter.record(provider="acme", model="no-price", input_tokens=10**6, output_tokens=10**6, session_id="s")
        assert budget.spent() == 0.0 and budget.unpriced_calls() == 3
        meter.check_budgets(session_id="s")  # still under: unpriced spend is unknown, not $0-and-over

    def test_zero_limit_blocks_after_the_first_priced_call(self):
        budget = Budget(0, scope="session")
        meter = Meter(pricing=_pricing(), budgets=[budget])
        _call(meter, session_id="s")  # nothing recorded yet: the check has no spend to act on
        with pytest.raises(BudgetExceededError):
            _call(meter, session_id="s")


class TestWindow:
    def test_old_events_are_outside_the_window(self):
        budget = Budget(0.004, scope="session", window="1h")
        meter = Meter(pricing=_pricing(), budgets=[budget])
        old = datetime.now(UTC) - timedelta(hours=2)
        meter.record(provider="openai", model="gpt-4.1", input_tokens=10**6, output_tokens=0, session_id="s", ts=old)
        assert budget.spent("s") == 0.0
        _call(meter, session_id="s")
        _call(meter, session_id="s")
        with pytest.raises(BudgetExceededError, match="in the last 1h"):
            _call(meter, session_id="s")

    def test_rolling_window_frees_budget(self):
        budget = Budget(0.005, scope="session", window=timedelta(seconds=0.4))
        meter = Meter(pricing=_pricing(), budgets=[budget])
        _call(meter, session_id="s")
        _call(meter, session_id="s")
        with pytest.raises(BudgetExceededError):
            meter.check_budgets(session_id="s")
        time.sleep(0.5)
        assert budget.spent("s") == 0.0
        _call(meter, session_id="s")  # allowed again


class TestOnExceed:
    def test_warn_once_per_episode_and_the_call_goes_on(self, caplog):
        budget = Budget(0.002, scope="session", on_exceed="warn")
        meter = Meter(pricing=_pricing(), budgets=[budget])
        _call(meter, session_id="s")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with caplog.at_level("WARNING", logger="a2a_llm_tracker"):
                _call(meter, session_id="s")
                _call(meter, session_id="s")
        assert [type(w.message) for w in caught] == [BudgetWarning]
        assert "budget exceeded: session 's'" in str(caught[0].message)
        assert sum("budget exceeded" in r.getMessage() for r in caplog.records) == 1
        assert budget.spent("s") == pytest.approx(3 * COST)

    def test_callable_gets_the_error_and_may_block(self):
        seen: list[BudgetExceededError] = []
        budget = Budget(0.002, scope="agent", on_exceed=seen.append)
        meter = Meter(pricing=_pricing(), budgets=[budget])
        _call(meter, agent_id="a")
        _call(meter, agent_id="a")
        assert [(e.key, round(e.spent_usd, 6)) for e in seen] == [("a", 0.003)]

        def block(err: BudgetExceededError) -> None:
            raise RuntimeError(f"stop {err.key}")

        meter2 = Meter(pricing=_pricing(), budgets=[Budget(0.002, scope="agent", on_exceed=block)])
        _call(meter2, agent_id="z")
        with pytest.raises(RuntimeError, match="stop z"):
            _call(meter2, agent_id="z")


class TestConcurrency:
    def test_overspend_bounded_by_calls_in_flight(self):
        """8 threads hammer one session: spend ends between the limit and limit + 8 calls."""
        threads_n, limit = 8, 0.05
        budget = Budget(limit, scope="session", key="shared")
        meter = Meter(pricing=_pricing(), budgets=[budget])
        made = [0] * threads_n
        refused = [0] * threads_n
        start = threading.Barrier(threads_n)

        def worker(i: int) -> None:
            start.wait()
            with meter_context(session_id="shared"):
                while True:
                    try:
                        meter.check_budgets()
                    except BudgetExceededError:
                        refused[i] += 1
                        return
                    time.sleep(0.001)  # the model call: other threads check meanwhile
                    meter.record(provider="openai", model="gpt-4.1", input_tokens=1000, output_tokens=125)
                    made[i] += 1

        workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(30)
        spent = budget.spent()
        assert spent == pytest.approx(sum(made) * COST)
        assert limit <= spent < limit + threads_n * COST + 1e-9
        assert sum(made) <= limit / COST + threads_n and all(r == 1 for r in refused)
        with pytest.raises(BudgetExceededError):
            meter.check_budgets(session_id="shared")


class TestSeeding:
    def test_restarted_process_keeps_its_budget_sqlite(self, tmp_path):
        db = tmp_path / "usage.db"
        with Meter(pricing=_pricing(), sinks=[SQLiteSink(db)], budgets=[Budget(0.01, scope="session")]) as m1:
            for _ in range(3):
                _call(m1, session_id="s1")
            _call(m1, session_id="s2")
        # "restart": a new process builds its budget from the store
        budget = Budget(0.01, scope="session", seed_from=db)
        assert budget.spent("s1") == pytest.approx(3 * COST) and budget.spent("s2") == pytest.approx(COST)
        m2 = Meter(pricing=_pricing(), sinks=[SQLiteSink(db)], budgets=[budget])
        _call(m2, session_id="s1")  # 0.009 < 0.01
        with pytest.raises(BudgetExceededError):
            _call(m2, session_id="s1")
        m2.close()

    def test_seed_counts_unpriced_and_honours_key_and_window(self, tmp_path):
        db = _data.sqlite_store(tmp_path)  # March 2026 events: s1 = $0.0078 + 1 unpriced
        b = Budget(1.0, scope="session").seed_from(db)
        assert b.spent("s1") == pytest.approx(0.0078) and b.unpriced_calls("s1") == 1
        assert b.spent("s2") == pytest.approx(0.0056 + 0.00028) and b.unpriced_calls("s2") == 2
        only = Budget(1.0, scope="agent", key="planner", seed_from=db)
        assert only.keys() == ["planner"] and only.spent() == pytest.approx(0.0078)
        windowed = Budget(1.0, scope="session", window="1d", seed_from=db)
        assert windowed.keys() == []  # all the stored events are older than a day

    def test_windowed_seed_keeps_recent_events(self, tmp_path):
        db = tmp_path / "u.db"
        now = datetime.now(UTC)
        with Meter(pricing=_pricing(), sinks=[SQLiteSink(db)], background=False) as m:
            for hours in (0.1, 0.5, 3):
                m.record(provider="openai", model="gpt-4.1", input_tokens=1000, output_tokens=125,
                         session_id="s", ts=now - timedelta(hours=hours))
        b = Budget(1.0, scope="session", window="1h", seed_from=db)
        assert b.spent("s") == pytest.approx(2 * COST)

    def test_seed_from_jsonl(self, tmp_path):
        path = tmp_path / "u.jsonl"
        _data.record_all([JSONLSink(path)])
        assert Budget(1.0, scope="user", seed_from=path).spent("u1") == pytest.approx(0.0078)

    def test_seed_from_postgres(self):
        reason = _data.pg_available()
        if reason:
            pytest.skip(reason)
        dsn, table = _data.pg_store("a2a_budget_test")
        try:
            b = Budget(0.005, scope="session", seed_from=dsn, table=table)
            assert b.spent("s1") == pytest.approx(0.0078) and b.unpriced_calls("s2") == 2
            with pytest.raises(BudgetExceededError):
                b.check({"session_id": "s1"})
            w = Budget(1.0, scope="session", window="7d", seed_from=dsn, table=table)
            assert w.keys() == []
        finally:
            _data.drop_schema("a2a_budget_test")

    def test_seed_errors(self, tmp_path):
        with pytest.raises(ConfigurationError, match="does not exist"):
            Budget(1.0, seed_from=tmp_path / "missing.db")


class TestValidation:
    @pytest.mark.parametrize("kwargs, message", [
        ({"limit_usd": -1}, "non-negative"),
        ({"limit_usd": float("nan")}, "non-negative"),
        ({"limit_usd": True}, "non-negative"),
        ({"limit_usd": 1, "scope": "team"}, "scope must be one of session, agent, user, project"),
        ({"limit_usd": 1, "window": "soon"}, "window must be a duration"),
        ({"limit_usd": 1, "window": timedelta(0)}, "must be positive"),
        ({"limit_usd": 1, "on_exceed": "explode"}, "on_exceed must be"),
        ({"limit_usd": 1, "key": ""}, "key must be a non-empty string"),
    ])
    def test_bad_arguments(self, kwargs, message):
        with pytest.raises(ConfigurationError, match=message):
            Budget(**kwargs)

    def test_attach_twice_counts_once_and_repr(self):
        budget = Budget(1.0, scope="agent", window="1h", key="a")
        meter = Meter(pricing=_pricing(), budgets=[budget])
        budget.attach(meter)
        _call(meter, agent_id="a")
        assert budget.spent() == pytest.approx(COST)
        assert repr(budget) == "Budget(1.0, scope='agent', window='1h', key='a')"
        budget.detach(meter)
        _call(meter, agent_id="a")
        assert budget.spent() == pytest.approx(COST)
        budget.reset()
        assert budget.spent() == 0.0
