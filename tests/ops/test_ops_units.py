"""Unit tests of the production tooling (no servers)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, List, Tuple

import pytest

from bot.ops.fuzz import make_cases
from bot.ops.load import (
    BOOKED_MARKER,
    FIRST_BUTTON,
    NO_BUTTON_FALLBACK,
    OURS_SCRIPTS,
    LoadResult,
    Sample,
    percentile,
    step_text,
    summary,
)
from bot.ops.procs import cpu_seconds
from bot.ops.prod import prod_settings, render_nginx, service_defaults, staff_side_env
from bot.ops.rasa_main import keep_visitor_text_out_of_broker_logs, seconds_from_env
from bot.ops.rest_channel import checked_rest_body
from bot.ops.scale import conversation_problems
from tests.e2e.ops_servers import PRIVATE_MARKERS, private_text_in_logs


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile([], 0.95) == 0


def test_load_result_counts_risk_replies_without_the_crisis_line() -> None:
    samples = [Sample("risk", 10, True, True), Sample("risk", 12, True, False), Sample("chat", 5, False, False)]
    result = LoadResult(samples, elapsed_s=2.0)
    assert result.completed == 2 and result.errors == 1 and result.throughput == 1.0
    assert result.risk_without_crisis_line() == 1
    assert result.latencies("risk") == [10, 12]


@pytest.mark.parametrize("body", [None, [], "hi", {"message": "hi"}, {"sender": "", "message": "hi"},
                                  {"sender": "x" * 256, "message": "hi"}, {"sender": 5, "message": "hi"},
                                  {"sender": "s", "message": None}, {"sender": "s", "message": ["hi"]}])
def test_malformed_rest_bodies_are_refused(body: object) -> None:
    with pytest.raises(ValueError):
        checked_rest_body(body)


def test_well_formed_rest_body_passes() -> None:
    body = {"sender": "visitor-1", "message": "hello", "metadata": {}}
    assert checked_rest_body(body) is body


def test_nginx_config_has_sticky_routing_and_limits(tmp_path: Path) -> None:
    env = {"BOT_VAR_DIR": str(tmp_path), "RASA_PORT": "5501", "RASA_PROCESSES": "3", "PUBLIC_PORT": "5580",
           "WEB_PORT": "5570", "CHAT_RATE_PER_MINUTE": "42", "MAX_REQUEST_BYTES": "2048"}
    text = render_nginx(prod_settings(env)).read_text()
    for port in (5501, 5502, 5503):
        assert f"server 127.0.0.1:{port}" in text
    assert "hash $route_key consistent" in text and "hl_route=$route_key" in text
    assert "rate=42r/m" in text and "limit_req_status 429" in text
    assert "client_max_body_size 2048" in text
    assert "127.0.0.1:5580" in text
    # Chat messages reuse connections to Rasa (a new connection per message queued crisis replies).
    rest = text[text.index("location = /webhooks/rest/webhook"):]
    rest = rest[:rest.index("}")]
    assert "proxy_http_version 1.1" in rest and 'proxy_set_header Connection ""' in rest
    assert "keepalive 32" in text[text.index("upstream rasa"):text.index("upstream website")]


def test_service_defaults_never_override_configuration() -> None:
    filled = service_defaults({"REDIS_HOST": "redis.internal", "DATABASE_URL": "postgresql://db/app"})
    assert filled["REDIS_HOST"] == "redis.internal" and filled["DATABASE_URL"] == "postgresql://db/app"
    assert filled["TRACKER_DB_HOST"] == "127.0.0.1"


def test_the_staff_side_consumes_the_broker_and_knows_every_rasa_process(tmp_path: Path) -> None:
    env = service_defaults({"BOT_VAR_DIR": str(tmp_path), "RASA_PORT": "5501", "RASA_PROCESSES": "2",
                            "TRACKER_DB_PASSWORD": "p@ss/word"})
    staff = staff_side_env(prod_settings(env), env)
    assert staff["HANDOFF_EVENT_SOURCE"] == "broker"
    assert staff["TRACKER_STORE_URL"] == "postgresql://postgres:p%40ss%2Fword@127.0.0.1:5432/harbor_tracker"
    assert staff["RASA_API_URL"] == "http://127.0.0.1:5501"
    assert staff["HANDOFF_RASA_PROCESSES"] == "rasa-1=http://127.0.0.1:5501,rasa-2=http://127.0.0.1:5502"
    chosen = staff_side_env(prod_settings(env), {**env, "HANDOFF_EVENT_SOURCE": "tracker"})
    assert chosen["HANDOFF_EVENT_SOURCE"] == "tracker"  # an explicit choice is kept


def test_seconds_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPS_TEST_SECONDS", raising=False)
    assert seconds_from_env("OPS_TEST_SECONDS", 1.5) == 1.5
    monkeypatch.setenv("OPS_TEST_SECONDS", "0.25")
    assert seconds_from_env("OPS_TEST_SECONDS", 1.5) == 0.25
    for wrong in ("abc", "0", "-1"):
        monkeypatch.setenv("OPS_TEST_SECONDS", wrong)
        with pytest.raises(SystemExit):
            seconds_from_env("OPS_TEST_SECONDS", 1.5)


def test_fuzz_cases_are_deterministic_and_varied() -> None:
    first, again = make_cases(240, seed=3), make_cases(240, seed=3)
    assert [case.body for case in first] == [case.body for case in again]
    labels = {case.label.split("-")[0] for case in first}
    assert {"risk", "long", "binary", "raw", "injection", "intent", "surrogates", "wrong", "malformed"} <= labels
    assert sum(case.risk for case in first) == 20


def test_private_marker_scan_finds_a_leak(tmp_path: Path) -> None:
    (tmp_path / "clean.log").write_text("INFO started\n")
    assert private_text_in_logs([tmp_path]) == []
    (tmp_path / "rasa.log").write_text(f"DEBUG text={PRIVATE_MARKERS['email']}\n")
    assert private_text_in_logs([tmp_path]) == ["email in rasa.log"]


def test_first_button_steps_send_the_first_offered_payload() -> None:
    reply = [{"text": "When would suit you?", "buttons": [{"title": "Mon 9", "payload": "2030-01-07 09:00"},
                                                           {"title": "Mon 10", "payload": "2030-01-07 10:00"}]}]
    assert step_text(FIRST_BUTTON, reply) == "2030-01-07 09:00"
    assert step_text(FIRST_BUTTON, [{"text": "no buttons"}]) == NO_BUTTON_FALLBACK
    assert step_text(FIRST_BUTTON, None) == NO_BUTTON_FALLBACK
    assert step_text("yes", reply) == "yes"


def test_the_realistic_mix_has_a_whole_booking() -> None:
    booking = [script for script in OURS_SCRIPTS if any(kind == "book" for kind, _ in script)]
    assert len(booking) == 1
    texts = [text for _, text in booking[0]]
    assert texts[0] == "I'd like to book an intake call" and FIRST_BUTTON in texts


def test_summary_counts_bookings_and_lost_races() -> None:
    result = LoadResult([Sample("book", 5, True, False)] * 3, elapsed_s=1.0,
                        booking_replies=[f"Your {BOOKED_MARKER} is ABC123.", "that time was just taken", "x"])
    assert "1 booked, 2 not booked" in summary("ours", result)


def test_cpu_seconds_counts_this_process_work() -> None:
    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert cpu_seconds(os.getpid()) - before >= 0.15
    assert cpu_seconds(2**22 + 12345) == 0.0  # no such process
def test_the_broker_error_log_keeps_no_visitor_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import rasa.core.brokers.pika as pika_broker

    calls: list = []

    class Recorder:
        def error(self, *args: object, **fields: object) -> None:
            calls.append((args, fields))

    monkeypatch.setattr(pika_broker, "structlogger", Recorder())
    keep_visitor_text_out_of_broker_logs()
    keep_visitor_text_out_of_broker_logs()  # idempotent: wrapped once
    event = {"sender_id": "v-1", "event": "user", "timestamp": 1.5, "text": "my secret", "metadata": {"a": 1}}
    pika_broker.structlogger.error("pika.events.publish.failed", host="127.0.0.1", rasa_event=event)
    assert calls == [
        (("pika.events.publish.failed",),
         {"host": "127.0.0.1", "rasa_event": {"sender_id": "v-1", "event": "user", "timestamp": 1.5}})
    ]


def test_scale_check_allows_silence_only_while_the_staff_side_has_paused_the_conversation() -> None:
    def user(text: str) -> dict:
        return {"event": "user", "text": text}

    bot = {"event": "bot", "text": "reply"}
    sent = ["a person please", "thanks", "bye"]
    handed_over = [user("a person please"), bot, {"event": "pause"}, bot, user("thanks"), user("bye")]
    assert conversation_problems("v", handed_over, sent) == []
    unpaused = [user("a person please"), bot, user("thanks"), user("bye")]
    assert conversation_problems("v", unpaused, sent) == [
        "v: 'thanks' has no reply before the next message", "v: the last message has no reply"
    ]
    resumed = [*handed_over[:3], {"event": "resume"}, user("thanks"), user("bye"), bot]
    assert conversation_problems("v", resumed, sent) == ["v: 'thanks' has no reply before the next message"]
    lost = conversation_problems("v", handed_over[:2], sent)
    assert lost == ["v: sent 3 messages, tracker has 1 (or in another order)"]


def test_a_load_in_slices_walks_each_script_on_from_where_it_stopped() -> None:
    """`make bench` drives stock and ours in turns: each conversation must go on across slices, so the
    mix (a whole booking, not only its first steps) is the same as in one long run."""
    import asyncio

    from aiohttp import web

    from bot.ops.load import merged, new_visitors, run_load
    from tests.local_http import serving

    received: List[Tuple[str, str]] = []

    async def webhook(request: web.Request) -> web.Response:
        body = await request.json()
        received.append((body["sender"], body["message"]))
        return web.json_response([{"text": "ok"}])

    script = [("chat", f"step {index}") for index in range(7)]

    async def drive() -> List[Any]:
        async with serving("/webhooks/rest/webhook", webhook) as base_url:
            visitors = new_visitors(2, "slices")
            return [await run_load(base_url, [script], 2, 30.0, 5, visitors=visitors) for _slice in range(3)]

    results = asyncio.run(drive())
    total = merged(results)
    assert total.completed == 15 and total.elapsed_s == sum(result.elapsed_s for result in results)
    for sender in {sender for sender, _text in received}:
        texts = [text for name, text in received if name == sender]
        assert texts == [text for _kind, text in script][: len(texts)]  # in order, never restarted
    assert max(len([1 for name, _ in received if name == sender]) for sender, _ in received) == 7


def test_bench_against_another_checkout_runs_that_checkouts_code_and_model(tmp_path: Path) -> None:
    from bot.launcher import child_environment, commands
    from bot.ops.bench import moved_to
    from bot.settings import PROJECT_ROOT, Runtime

    settings = Runtime(rasa_port=1, actions_port=2, web_port=3, host="127.0.0.1", var_dir=tmp_path,
                       database_url="sqlite://", site_origin="http://localhost")
    planned = commands(settings, "token", tmp_path / "endpoints.yml")
    env = child_environment(settings)
    moved, moved_env = moved_to(tmp_path / "other", planned, env)
    rasa = " ".join(moved["rasa"])
    assert str(tmp_path / "other" / "models" / "assistant.tar.gz") in rasa
    assert str(PROJECT_ROOT / "models") not in rasa
    assert moved_env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path / "other")
    assert str(tmp_path / "endpoints.yml") in rasa  # this run's endpoints, outside both checkouts
    assert moved_to(PROJECT_ROOT, planned, env) == (planned, env)


def test_machine_cpu_counts_every_state_but_idle_and_iowait_as_busy() -> None:
    from bot.ops.procs import machine_cpu_seconds

    hertz = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal guest guest_nice
    busy, total = machine_cpu_seconds("cpu  100 5 45 700 50 10 5 5 30 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n")
    assert (busy * hertz, total * hertz) == pytest.approx((170, 920))
    busy_now, total_now = machine_cpu_seconds()
    assert 0 <= busy_now <= total_now
