"""The dispatcher in a forked child: a fresh queue and thread; the parent's events stay the parent's.

The fork happens in a fresh interpreter (not in pytest's, whose other threads could hold locks).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from a2a_llm_tracker.sinks.jsonl import read_jsonl

SCRIPT = textwrap.dedent("""
    import os, sys
    from a2a_llm_tracker import Meter
    from a2a_llm_tracker.sinks.jsonl import JSONLSink

    meter = Meter(sinks=[JSONLSink(sys.argv[1])])
    for i in range(10):
        meter.record(input_tokens=i, agent_id="parent")
    pid = os.fork()
    if pid == 0:
        for i in range(5):
            meter.record(input_tokens=i, agent_id="child")
        ok = meter.flush(10)
        meter.close()
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    meter.close()
    sys.exit(os.WEXITSTATUS(status))
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_records_its_own_events_once(tmp_path):
    path = tmp_path / "u.jsonl"
    subprocess.run([sys.executable, "-c", SCRIPT, str(path)], check=True, timeout=60)
    events = list(read_jsonl(path))
    assert sorted(e.agent_id for e in events) == ["child"] * 5 + ["parent"] * 10
    assert len({e.event_id for e in events}) == 15
