"""meter_context: nesting, asyncio tasks, threads."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from a2a_llm_tracker import ContextThreadPoolExecutor, bind_context, get_context, meter_context, set_context
from a2a_llm_tracker._context import adapter_scope, current_adapter, reset_context


class TestNesting:
    def test_inner_inherits_and_outer_is_restored(self):
        with meter_context(agent_id="planner", session_id="s-1", user_id="u-1", team="blue"):
            with meter_context(agent_id="researcher", step="search") as inner:
                assert inner.agent_id == "researcher"
                assert inner.session_id == "s-1" and inner.user_id == "u-1"
                assert dict(inner.metadata) == {"team": "blue", "step": "search"}
            outer = get_context()
            assert outer.agent_id == "planner" and dict(outer.metadata) == {"team": "blue"}
        assert get_context().agent_id is None and not get_context().metadata

    def test_restored_after_exception(self):
        with pytest.raises(RuntimeError):
            with meter_context(agent_id="a"):
                raise RuntimeError("boom")
        assert get_context().agent_id is None

    def test_reusable_and_reentrant(self):
        ctx = meter_context(agent_id="a")
        with ctx:
            with ctx:
                assert get_context().agent_id == "a"
            assert get_context().agent_id == "a"
        assert get_context().agent_id is None

    def test_decorator_sync_and_async(self):
        @meter_context(agent_id="deco")
        def sync():
            return get_context().agent_id

        @meter_context(agent_id="adeco")
        async def coro():
            await asyncio.sleep(0)
            return get_context().agent_id

        assert sync() == "deco"
        assert asyncio.run(coro()) == "adeco"
        assert get_context().agent_id is None

    def test_set_and_reset_context(self):
        token = set_context(session_id="s-9", region="eu")
        assert get_context().session_id == "s-9" and get_context().metadata["region"] == "eu"
        reset_context(token)
        assert get_context().session_id is None

    def test_bad_field_types_rejected_up_front(self):
        with pytest.raises(TypeError, match="agent_id"):
            meter_context(agent_id=42)  # type: ignore[arg-type]


class TestConcurrency:
    async def test_tasks_do_not_see_each_other(self):
        seen: dict[str, list[str | None]] = {}

        async def agent(name: str):
            with meter_context(agent_id=name, session_id=f"s-{name}"):
                values = []
                for _ in range(20):
                    await asyncio.sleep(0)
                    values.append(get_context().agent_id)
                    assert get_context().session_id == f"s-{name}"
                seen[name] = values

        await asyncio.gather(*(agent(f"agent-{i}") for i in range(10)))
        for name, values in seen.items():
            assert values == [name] * 20

    async def test_task_inherits_the_context_it_was_created_in(self):
        with meter_context(agent_id="parent"):
            task = asyncio.create_task(asyncio.sleep(0, result=None))
            child = asyncio.create_task(_agent_id_later())
        await task
        assert await child == "parent"

    def test_threads_do_not_see_each_other(self):
        barrier = threading.Barrier(8)
        results: dict[int, list[str | None]] = {}

        def work(i: int):
            with meter_context(agent_id=f"t{i}"):
                barrier.wait()
                results[i] = [get_context().agent_id for _ in range(100)]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(values == [f"t{i}"] * 100 for i, values in results.items())

    def test_plain_pool_does_not_carry_context_but_helpers_do(self):
        with meter_context(agent_id="caller", session_id="s"):
            with ThreadPoolExecutor(2) as pool:
                plain = pool.submit(lambda: get_context().agent_id).result()
                bound = pool.submit(bind_context(lambda: get_context().agent_id)).result()
            with ContextThreadPoolExecutor(2) as pool:
                carried = list(pool.map(lambda _: (get_context().agent_id, get_context().session_id), range(4)))
        assert plain is None
        assert bound == "caller"
        assert carried == [("caller", "s")] * 4


class TestAdapterScope:
    def test_outermost_adapter_claims_the_call(self):
        with adapter_scope("langchain") as outer:
            assert outer is True and current_adapter() == "langchain"
            with adapter_scope("litellm") as inner:
                assert inner is False
        assert current_adapter() is None


async def _agent_id_later():
    await asyncio.sleep(0)
    return get_context().agent_id
