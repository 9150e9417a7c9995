"""CCSSink against a fake CCS server, through the real mftsccs client: what arrives, and how failures are survived."""

from __future__ import annotations

import json
import time

import pytest

from a2a_llm_tracker import UsageEvent

from .conftest import CLIENT_ID, SECRET


def _event(i: int = 0, **kw) -> UsageEvent:
    fields = {"provider": "openai", "model": "gpt-4o", "input_tokens": 100 + i, "output_tokens": 20,
              "total_tokens": 120 + i, "cost_usd": 0.001 * (i + 1), "agent_id": "planner", "session_id": "sess-1",
              "trace_id": "trace-1"}
    fields.update(kw)
    return UsageEvent(**fields)


def _one(items):
    assert len(items) == 1, items
    return items[0]


class TestWhatArrives:
    def test_readme_concepts_and_connections_for_each_event(self, fake, make_sink):
        """Every event becomes a the_llm_usage concept linked to tracker, provider, model, cost, tokens, session, trace."""
        sink = make_sink()
        events = [_event(i) for i in range(3)]
        sink.write_many(events)
        assert sink.flush(10)

        tracker = _one(fake.concepts_of_type("the_llm_tracker"))
        assert tracker["characterValue"] == "demo-app"
        entity_link = _one(fake.links_to(tracker["id"], "the_entity_s_llm_tracker"))
        assert entity_link["ofTheConceptId"] == int(CLIENT_ID)

        usages = {json.loads(c["characterValue"])["event_id"]: c for c in fake.concepts_of_type("the_llm_usage")}
        assert set(usages) == {e.event_id for e in events}
        for event in events:
            usage = usages[event.event_id]
            data = json.loads(usage["characterValue"])
            assert data["total_tokens"] == event.total_tokens and data["cost_usd"] == event.cost_usd
            assert data["application"] == "demo-app" and data["model"] == "gpt-4o"
            _one(fake.links_to(usage["id"], "the_llm_tracker_s_usage"))
            assert fake.links_to(usage["id"], "the_llm_tracker_s_usage")[0]["ofTheConceptId"] == tracker["id"]
            targets = {link["typeCharacter"]: fake.concepts[link["toTheConceptId"]]
                       for link in fake.links_from(usage["id"])}
            assert targets["the_llm_usage_s_provider"]["characterValue"] == "openai"
            assert targets["the_llm_usage_s_provider"]["typeCharacter"] == "the_llm_provider"
            assert targets["the_llm_usage_s_model"]["typeCharacter"] == "the_llm_model"
            assert targets["the_llm_usage_s_cost"]["typeCharacter"] == "the_cost"
            assert float(targets["the_llm_usage_s_cost"]["characterValue"]) == event.cost_usd
            assert targets["the_llm_usage_s_token_count"]["typeCharacter"] == "the_token_count"
            assert int(targets["the_llm_usage_s_token_count"]["characterValue"]) == event.total_tokens
            assert targets["the_llm_usage_s_session"]["characterValue"] == "sess-1"
            assert targets["the_llm_usage_s_trace"]["characterValue"] == "trace-1"
            assert targets["the_llm_usage_s_agent"]["characterValue"] == "planner"
        assert fake.unresolved() == []
        # one provider concept, reused by all three usages
        assert len(fake.concepts_of_type("the_llm_provider")) == 1

    def test_absent_fields_make_no_concepts(self, fake, make_sink):
        """An unpriced event without session/trace gets no cost, session or trace concept (never a made-up $0)."""
        sink = make_sink()
        sink.write(UsageEvent(provider="anthropic", model="claude-x", accuracy="unknown"))
        assert sink.flush(10)
        usage = _one(fake.concepts_of_type("the_llm_usage"))
        kinds = {link["typeCharacter"] for link in fake.links_from(usage["id"])}
        assert kinds == {"the_llm_usage_s_provider", "the_llm_usage_s_model"}
        assert fake.concepts_of_type("the_cost") == []

    def test_several_events_per_request_and_later_batches_send_only_new_concepts(self, fake, make_sink):
        sink = make_sink(batch_size=50)
        sink.write_many([_event(i) for i in range(20)])
        assert sink.flush(10)
        first = list(fake.sync_batches)
        assert len(first) == 1 and first[0]["concepts"] > 20
        sink.write_many([_event(i, session_id=None, trace_id=None) for i in range(20, 25)])
        assert sink.flush(10)
        second = fake.sync_batches[-1]
        # type concepts, tracker, provider, model and agent are referenced by their real ids, not re-sent
        body = json.loads(fake.requests_to("sync")[-1]["body"])
        sent_types = {c["typeCharacter"] for c in body["concepts"]}
        assert sent_types <= {"the_llm_usage", "the_cost", "the_token_count"}, sent_types
        assert all(c["id"] < 0 for c in body["concepts"])
        refs = [c["typeId"] for c in body["concepts"]] + [c["ofTheConceptId"] for c in body["connections"]]
        sent_ids = {c["id"] for c in body["concepts"]}
        assert all(r > 0 or r in sent_ids for r in refs)  # nothing points at a ghost of an earlier batch
        assert second["unresolved"] == []
        assert len(fake.usage_events()) == 25

    def test_tracker_is_reused_after_restart(self, fake, make_sink, tmp_path):
        """The tracker's real id is kept under storage_path: a restart does not create a second tracker."""
        sink = make_sink()
        sink.write(_event(1))
        assert sink.flush(10)
        sink.close()
        again = make_sink()
        again.write(_event(2))
        assert again.flush(10)
        tracker = _one(fake.concepts_of_type("the_llm_tracker"))
        assert len(fake.links_from(tracker["id"], "the_llm_tracker_s_usage")) == 2
        assert fake.unresolved() == []

    def test_urls_on_the_wire(self, fake, make_sink):
        """server_url's trailing slash is stripped and node_url defaults to it (never localhost:5001)."""
        sink = make_sink(server_url=fake.url + "/")
        assert sink.settings.node_url == fake.url and sink.settings.server_url == fake.url
        sink.write(_event())
        assert sink.flush(10)
        assert [r["raw_path"] for r in fake.records] == ["/api/oauth/token", "/api/v1/local-concepts"]
        assert fake.records[1]["headers"]["authorization"].startswith("Bearer fake-token-")
        assert "authorization" not in fake.records[0]["headers"]


class TestFailures:
    def test_server_down_for_a_while_then_everything_arrives_once(self, fake, make_sink):
        sink = make_sink()
        fake.stop()
        events = [_event(i) for i in range(30)]
        for event in events:
            sink.write(event)
        assert not sink.flush(1.0)  # gives up early: the server is down
        assert sink.pending() == 30
        time.sleep(0.3)
        assert sink.stats().failures >= 2
        fake.start()
        assert sink.flush(15)
        ids = [e["event_id"] for e in fake.usage_events()]
        assert sorted(ids) == sorted(e.event_id for e in events)  # all, none twice
        assert sink.pending() == 0 and fake.unresolved() == []

    @pytest.mark.parametrize("mode", ["500", "503", "drop", "not_json"])
    def test_sync_failures_are_retried(self, fake, make_sink, mode):
        fake.set_mode("sync", mode, times=2)
        sink = make_sink()
        events = [_event(i) for i in range(5)]
        sink.write_many(events)
        assert sink.flush(10)
        assert len(fake.requests_to("sync")) == 3
        # the retries re-sent the same ghost ids, so nothing is duplicated even where the server stored a failed try
        assert sorted(e["event_id"] for e in fake.usage_events()) == sorted(e.event_id for e in events)
        assert sink.stats().failures == 2 and sink.stats().last_error

    def test_hanging_server_is_bounded_and_not_duplicated(self, fake, make_sink):
        """A sync that hangs is cut at request_timeout and retried; the hung one landing later changes nothing."""
        fake.set_mode("sync", "hang:1.5", times=1)
        sink = make_sink(request_timeout=0.4)
        events = [_event(i) for i in range(4)]
        sink.write_many(events)
        start = time.monotonic()
        assert sink.flush(10)
        assert time.monotonic() - start < 1.5  # did not wait for the hung request
        assert "timed out" in sink.stats().last_error
        time.sleep(1.5)  # the hung request is processed now: same ghost ids, so an upsert
        assert sorted(e["event_id"] for e in fake.usage_events()) == sorted(e.event_id for e in events)

    def test_401_reauthenticates(self, fake, make_sink):
        sink = make_sink()
        sink.write(_event(1))
        assert sink.flush(10)
        fake.expire_tokens()
        sink.write(_event(2))
        assert sink.flush(10)
        assert len(fake.requests_to("oauth_token")) == 2
        assert len(fake.usage_events()) == 2
        statuses = [r.get("mode") for r in fake.requests_to("sync")]
        assert len(statuses) == 3  # the 401, then the retry with the new token

    def test_401_with_failing_reauth_recovers_later(self, fake, make_sink):
        """The client's own re-auth fails (TokenRefreshError): the worker authenticates afresh on the next try."""
        sink = make_sink()
        sink.write(_event(1))
        assert sink.flush(10)
        fake.expire_tokens()
        fake.set_mode("oauth_token", "500", times=1)
        sink.write(_event(2))
        assert sink.flush(10)
        assert "TokenRefreshError" in sink.stats().last_error
        assert len(fake.requests_to("oauth_token")) == 3 and len(fake.usage_events()) == 2

    def test_oauth_failures_and_html_token_are_retried(self, fake, make_sink):
        fake.set_mode("oauth_token", "500", times=1)
        fake.set_mode("oauth_token", "not_json", times=1)  # a proxy page must never become the bearer token
        sink = make_sink()
        sink.write(_event())
        assert sink.flush(10)
        assert len(fake.requests_to("oauth_token")) == 3
        for request in fake.requests_to("sync"):
            assert "<html" not in request["headers"].get("authorization", "")
        assert len(fake.usage_events()) == 1

    def test_wrong_secret_keeps_events_and_never_leaks(self, fake, make_sink, caplog):
        caplog.set_level("DEBUG", logger="a2a_llm_tracker")
        sink = make_sink(client_secret="wrong-secret-value-123")
        sink.write(_event())
        assert not sink.flush(1.5)
        assert sink.pending() == 1 and fake.requests_to("sync") == []
        stats = sink.stats()
        assert "OAuth" in stats.last_error and "wrong-secret-value-123" not in stats.last_error
        assert "wrong-secret-value-123" not in caplog.text

    def test_rejected_event_is_isolated_and_does_not_poison_later_ones(self, fake, make_sink):
        """A batch the server refuses is split; the bad event is set aside; the others and later ones arrive."""
        fake.reject_if_contains = "POISON"
        sink = make_sink(max_rejects=2)
        good = [_event(i) for i in range(6)]
        bad = _event(99, agent_id="POISON")
        sink.write_many(good[:3] + [bad] + good[3:])  # the first batch also carries every type concept
        deadline = time.monotonic() + 10
        while sink.rejected() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.flush(10)
        assert sink.rejected() == 1 and sink.pending() == 0
        later = [_event(i) for i in range(100, 105)]
        sink.write_many(later)
        assert sink.flush(10)
        arrived = {e["event_id"] for e in fake.usage_events()}
        assert arrived == {e.event_id for e in good + later}
        assert fake.unresolved() == []  # no batch pointed at concepts of the refused ones
        fake.reject_if_contains = None
        assert sink.requeue_rejected() == 1
        assert sink.flush(10)
        assert bad.event_id in {e["event_id"] for e in fake.usage_events()}

    def test_duplicate_event_ids_are_sent_once(self, fake, make_sink):
        sink = make_sink()
        event = _event()
        sink.write_many([event, event])
        assert sink.flush(10)
        sink.write(event)  # at-least-once upstream: a replay of an already delivered event
        assert sink.flush(10)
        assert [e["event_id"] for e in fake.usage_events()] == [event.event_id]
        assert sink.stats().duplicates_skipped == 2


class TestBoundedState:
    def test_client_caches_stay_small_and_cost_per_event_stays_flat(self, fake, make_sink):
        """After many events the ccs client's caches hold only the reusable concepts; time per batch is flat."""
        import ccs

        sink = make_sink(batch_size=50)
        times = []
        for block in range(5):
            events = [_event(i, session_id=f"s-{block}-{i}", model=f"m{i % 3}") for i in range(200)]
            start = time.perf_counter()
            sink.write_many(events)
            assert sink.flush(30)
            times.append(time.perf_counter() - start)
        ratio = times[-1] / times[0]
        print(f"CCS delivery: last/first 200-event block time ratio {ratio:.2f} ({times})")
        assert ratio < 3.0
        assert len(fake.usage_events()) == 1000
        # the client's globals were reset to the confirmed reusable concepts after every batch
        assert len(ccs.LocalConceptsData._concepts_by_id) < 100
        assert len(ccs.LocalConnectionData.connectionArray) == 0
        assert len(ccs.LocalSyncData.ghostIdMap) == 0 and ccs.LocalSyncData.transactionCollections == []

    def test_no_files_in_the_working_directory(self, fake, make_sink, tmp_path, monkeypatch):
        """The client's default ./data/ccs/ is never used: everything sits under storage_path."""
        cwd = tmp_path / "cwd"
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        sink = make_sink()
        sink.write(_event())
        assert sink.flush(10)
        assert list(cwd.iterdir()) == []
        names = {p.name for p in (tmp_path / "ccs").iterdir()}
        assert {"ccs-outbox.db", "ccs-state.json"} <= names


def test_secret_and_tokens_never_in_logs_files_or_stdout(fake, make_sink, caplog, capsys, tmp_path):
    caplog.set_level("DEBUG")
    fake.set_mode("sync", "500", times=1)
    fake.set_mode("sync", "401", times=1)
    sink = make_sink()
    sink.write_many([_event(i) for i in range(3)])
    assert sink.flush(10)
    fake.expire_tokens()
    sink.write(_event(9))
    assert sink.flush(10)
    assert len(fake.issued) >= 2
    secrets = [SECRET, *fake.issued]
    out = capsys.readouterr()
    blobs = [caplog.text, out.out, out.err, repr(sink), repr(sink.settings), repr(sink.stats())]
    blobs += [p.read_bytes().decode("latin-1") for p in (tmp_path / "ccs").rglob("*") if p.is_file()]
    for secret in secrets:
        for blob in blobs:
            assert secret not in blob
    assert "ccs:" in caplog.text  # the client's print() chatter went to the debug log, not stdout
    assert "Sync failed" not in out.out
