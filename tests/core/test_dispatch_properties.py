"""Property: whatever the sinks do, every recorded event ends up in each sink or in its outbox; none lost."""

from __future__ import annotations

import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a2a_llm_tracker import DispatchConfig, Meter, UsageEvent
from a2a_llm_tracker.sinks.base import Sink


class ScriptedSink(Sink):
    """Fails according to a script of booleans (True = this write call fails), then succeeds."""

    def __init__(self, name: str, script: list[bool], poison_every: int = 0):
        self._name, self.script, self.poison_every = name, list(script), poison_every
        self.ids: list[str] = []
        self.lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    def write(self, event: UsageEvent) -> None:
        self.write_many([event])

    def write_many(self, events) -> None:
        with self.lock:
            if self.script and self.script.pop(0):
                raise OSError("scripted failure")
            if self.poison_every and any((e.input_tokens or 0) % self.poison_every == 1 for e in events):
                if len(events) > 1:
                    raise ValueError("batch holds a poison event")
            self.ids.extend(e.event_id for e in events)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 60), script_a=st.lists(st.booleans(), max_size=30),
       script_b=st.lists(st.booleans(), max_size=30), poison=st.sampled_from([0, 7]),
       batch=st.integers(1, 16), queue=st.integers(1, 40), background=st.booleans())
def test_nothing_is_lost(tmp_path_factory, n, script_a, script_b, poison, batch, queue, background):
    outbox = tmp_path_factory.mktemp("ob") / "outbox.db"
    a = ScriptedSink("a", script_a, poison)
    b = ScriptedSink("b", script_b)
    meter = Meter(sinks=[a, b], background=background,
                  dispatch=DispatchConfig(max_batch=batch, max_queue=queue, block_timeout=0.001, max_retries=2,
                                          retry_backoff=0.0, outbox_path=outbox))
    recorded = [meter.record(input_tokens=i).event_id for i in range(n)]
    meter.flush(30)
    stats = meter.stats()
    assert stats.lost == 0
    assert stats.submitted == n
    for sink in (a, b):
        in_outbox = stats.in_outbox  # (event, sink) deliveries waiting, both sinks together
        assert len(set(sink.ids)) + in_outbox >= n
    # the sinks recover: a replay delivers the rest, and every event is in every sink
    a.script.clear()
    b.script.clear()
    a.poison_every = 0
    meter.replay_outbox()
    meter.close()
    assert set(a.ids) == set(recorded) and set(b.ids) == set(recorded)
    assert meter.stats().lost == 0
