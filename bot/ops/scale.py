"""Scale test (`make bench-scale`): the production topology with one and with N Rasa processes.

Both runs use nginx, the PostgreSQL tracker store and the Redis lock store, under the same load. After
each run every conversation's tracker is read back: each message sent must be there once, in the order
sent, each followed by the assistant's reply before the next one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Dict, List, Tuple

import requests

from bot.ops.load import OURS_SCRIPTS, LoadResult, percentile, run_load, summary
from bot.ops.procs import free_port, machine_cpu_seconds
from bot.ops.prod import Topology, build_topology, delete_event_queues

# This benchmark's own database and Redis db, so it never mixes with a running deployment.
BENCH_SERVICES = {
    "TRACKER_DB_NAME": "bench_scale_tracker",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/bench_scale_app",
    "REDIS_LOCK_DB": "5",
    "REDIS_KEY_PREFIX": "benchscale",
}


def topology_env(processes: int, var_dir: Path) -> Dict[str, str]:
    env = dict(os.environ)
    for name, value in BENCH_SERVICES.items():
        env.setdefault(name, value)
    # An exchange and queue of each run's own (the staff side consumes the queue; measure() deletes them).
    tag = uuid.uuid4().hex[:10]
    env.setdefault("RABBITMQ_EXCHANGE", f"bench-scale-events-{tag}")
    env.setdefault("RABBITMQ_QUEUE", f"bench_scale_events_{tag}")
    first_rasa = free_port()
    while not all(_free(first_rasa + offset) for offset in range(processes)):
        first_rasa = free_port()
    env.update(
        RASA_PROCESSES=str(processes), RASA_PORT=str(first_rasa), ACTIONS_PORT=str(free_port()),
        WEB_PORT=str(free_port()), PUBLIC_PORT=str(free_port()), BOT_VAR_DIR=str(var_dir),
        # The load comes from one address; the per-client limit would otherwise answer 429.
        CHAT_RATE_PER_MINUTE="1000000", CHAT_RATE_BURST="100000",
    )
    env.pop("RASA_AUTH_TOKEN", None)
    env.pop("ACTION_ENDPOINT_URL", None)
    env.pop("SITE_ORIGIN", None)
    return env


def _free(port: int) -> bool:
    from bot.launcher import port_is_free

    return port_is_free("127.0.0.1", port)


def conversation_problems(sender: str, events: List[Dict[str, Any]], sent: List[str]) -> List[str]:
    """One conversation's stored events against what was sent: nothing lost, repeated or reordered, and
    each message answered before the next, except while the staff side has paused the conversation
    (a handoff: Rasa then stores the visitor's messages and answers none of them)."""
    problems = []
    stored: List[str] = []
    answered, paused = True, False
    for event in events:
        kind = event.get("event")
        if kind == "pause":
            paused = True
        elif kind in ("resume", "restart", "session_started"):
            paused = False
        elif kind == "user":
            if not answered:
                problems.append(f"{sender}: '{stored[-1]}' has no reply before the next message")
            stored.append(str(event.get("text")))
            answered = paused
        elif kind == "bot":
            answered = True
    if stored != sent:
        problems.append(f"{sender}: sent {len(sent)} messages, tracker has {len(stored)} (or in another order)")
    elif not answered:
        problems.append(f"{sender}: the last message has no reply")
    return problems


def tracker_problems(topology: Topology, transcripts: Dict[str, List[str]]) -> List[str]:
    """Every conversation's tracker, read back from the shared tracker store, checked as above."""
    problems = []
    for sender, sent in transcripts.items():
        tracker = requests.get(
            f"{topology.rasa_url(0)}/conversations/{sender}/tracker",
            params={"token": topology.token}, timeout=30,
        ).json()
        problems += conversation_problems(sender, tracker.get("events", []), sent)
    return problems


async def measure(processes: int, args: argparse.Namespace) -> Tuple[LoadResult, List[str], float]:
    """The load's result, the trackers' problems, and how many of the machine's cores were busy."""
    var_dir = Path(tempfile.mkdtemp(prefix=f"bench-scale-{processes}-"))
    topology = build_topology(topology_env(processes, var_dir))
    print(f"  starting {processes} Rasa process(es) behind nginx (logs in {var_dir}/logs)", flush=True)
    try:
        topology.start()
        topology.wait_until_ready(quiet=True)
        base_url = f"http://127.0.0.1:{topology.settings.public_port}"
        await run_load(base_url, OURS_SCRIPTS, 2, 3.0, 40, f"warmup{processes}")
        print(f"  driving {processes} process(es): {args.conversations} conversations, up to {args.seconds:.0f} s",
              flush=True)
        busy_before, total_before = machine_cpu_seconds()
        result = await run_load(
            base_url, OURS_SCRIPTS, args.conversations, args.seconds, args.max_messages,
            f"scale{processes}", keep_transcripts=True,
        )
        busy_after, total_after = machine_cpu_seconds()
        cores = os.cpu_count() or 1
        busy_cores = cores * (busy_after - busy_before) / max(1e-9, total_after - total_before)
        problems = tracker_problems(topology, result.transcripts)
        print(summary(f"{processes} process(es)", result))
        print(f"  machine: {busy_cores:.2f} of {cores} cores busy during the load (every program on it)", flush=True)
        print(f"  trackers: {len(result.transcripts)} conversations checked, {len(problems)} problems", flush=True)
        for problem in problems[:10]:
            print(f"    {problem}")
        return result, problems, busy_cores
    finally:
        topology.stop()
        shutil.rmtree(var_dir, ignore_errors=True)
        try:
            await asyncio.to_thread(delete_event_queues, topology.env)  # it runs its own event loop
        except Exception as error:  # RabbitMQ gone: the figures above still stand
            print(f"  (could not delete the run's RabbitMQ queue: {error})", flush=True)


async def compare_process_counts(args: argparse.Namespace) -> int:
    print("Scale test: production topology (nginx, PostgreSQL tracker store, Redis lock store)", flush=True)
    one, one_problems, one_busy = await measure(1, args)
    many, many_problems, many_busy = await measure(args.processes, args)
    ratio = many.throughput / one.throughput if one.throughput else 0.0
    lost = len(one_problems) + len(many_problems)
    cores = os.cpu_count() or 1
    print(f"machine: {one_busy:.2f} of {cores} cores busy with 1 process, {many_busy:.2f} with {args.processes} "
          f"(a process also waits for PostgreSQL and Redis, so one process leaves CPU idle)", flush=True)
    print(
        f"scale {many.throughput:.1f} msg/s with {args.processes} processes vs {one.throughput:.1f} with 1 = "
        f"{ratio:.2f}x; p95 {percentile(many.latencies(), 0.95):.0f} ms vs "
        f"{percentile(one.latencies(), 0.95):.0f} ms; tracker problems {lost}",
        flush=True,
    )
    return 0 if lost == 0 and one.errors == 0 and many.errors == 0 else 1
