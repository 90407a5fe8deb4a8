"""`make bench`: our assistant against the stock `rasa init` assistant under the same concurrent load.

Measured in one run, one after the other (never at the same time, so they do not share the CPU):
full training time, server cold start (process start to first reply), throughput and latency at N
concurrent conversations (crisis replies separately), and peak memory per process.
With --prod it instead compares the production topology (nginx + PostgreSQL tracker store + Redis lock
store) with one and with several Rasa processes, and checks every conversation's tracker afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import aiohttp

from bot.db import upgrade
from bot.launcher import child_environment, commands, write_endpoints
from bot.ops.load import (
    OURS_SCRIPTS,
    STOCK_SCRIPTS,
    LoadResult,
    Script,
    merged,
    new_visitors,
    percentile,
    run_load,
    summary,
)
from bot.ops.procs import cpu_seconds, free_port, peak_rss_mib, spawn, stop_group
from bot.ops.stock import ensure_stock_project, quiet_env, rasa_version, stock_model
from bot.settings import PROJECT_ROOT, Runtime

OUR_MODEL = PROJECT_ROOT / "models" / "assistant.tar.gz"
TRAIN_DATA = ["data/nlu", "data/rules", "data/stories"]
COLD_START_LIMIT_S = 240.0


@dataclass
class Measured:
    label: str
    cold_start_s: float
    load: LoadResult
    memory_mib: Dict[str, float]
    # CPU milliseconds per answered message during the load, per process (robust to a shared machine).
    cpu_ms_per_message: Dict[str, float]


async def first_reply(base_url: str, started: float, process: subprocess.Popen[bytes]) -> float:
    """Seconds from `started` until the REST channel answers a greeting with at least one message."""
    url = base_url + "/webhooks/rest/webhook"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while time.monotonic() - started < COLD_START_LIMIT_S:
            if process.poll() is not None:
                raise RuntimeError("the Rasa server stopped while starting")
            try:
                async with session.post(url, json={"sender": "bench-warmup", "message": "hello"}) as response:
                    if response.status == 200 and await response.json(content_type=None):
                        return time.monotonic() - started
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"no reply within {COLD_START_LIMIT_S:.0f} s")


def measure_training(log: Path) -> float:
    """`rasa train --force` of our assistant in a temporary copy (the project's own model is untouched)."""
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        copy = Path(scratch)
        for name in ("config.yml", "domain.yml"):
            shutil.copy(PROJECT_ROOT / name, copy / name)
        for folder in ("data", "bot", "actions"):
            shutil.copytree(PROJECT_ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
        env = quiet_env()
        env["PYTHONPATH"] = str(copy)
        started = time.monotonic()
        with open(log, "ab") as output:
            subprocess.run(
                [sys.executable, "-m", "rasa", "train", "--force", "--data", *TRAIN_DATA, "--out", "models"],
                cwd=copy, env=env, stdout=output, stderr=subprocess.STDOUT, check=True,
            )
        return time.monotonic() - started


@dataclass
class Running:
    """A started server under test: where to send messages and its processes (name: process)."""

    label: str
    base_url: str
    scripts: List[Script]
    processes: Dict[str, subprocess.Popen[bytes]]
    cold_start_s: float


async def start_ours(var_dir: Path, root: Path = PROJECT_ROOT, label: str = "ours") -> Running:
    """Our assistant from this checkout, or (`root`) from another checkout of it, such as a git worktree
    of an earlier commit (its own code and model; this checkout's endpoints and interpreter)."""
    (var_dir / "logs").mkdir(parents=True, exist_ok=True)
    settings = Runtime(
        rasa_port=free_port(), actions_port=free_port(), web_port=free_port(), host="127.0.0.1",
        var_dir=var_dir, database_url=f"sqlite:///{var_dir / 'app.db'}", site_origin="http://localhost",
    )
    endpoints = write_endpoints(settings)
    env = child_environment(settings)
    upgrade(settings.database_url)  # the application database (bookings), as `python -m bot run` does
    planned = commands(settings, "bench-token", endpoints)
    planned, env = moved_to(root, planned, env)
    actions = spawn(planned["actions"], root, env, var_dir / "logs" / "actions.log")
    started = time.monotonic()
    rasa = spawn(planned["rasa"], root, env, var_dir / "logs" / "rasa.log")
    return await answering(label, f"http://127.0.0.1:{settings.rasa_port}", OURS_SCRIPTS,
                           {"rasa": rasa, "actions": actions}, started)


Commands = Dict[str, List[str]]


def moved_to(root: Path, planned: Commands, env: Dict[str, str]) -> Tuple[Commands, Dict[str, str]]:
    """The launcher's commands and environment with this checkout's paths pointing into `root` instead."""
    if root == PROJECT_ROOT:
        return planned, env
    here, there = str(PROJECT_ROOT), str(root)
    moved = {name: [part.replace(here, there) for part in command] for name, command in planned.items()}
    return moved, {**env, "PYTHONPATH": env.get("PYTHONPATH", "").replace(here, there)}


async def start_stock(var_dir: Path) -> Running:
    project = ensure_stock_project(var_dir / "logs" / "stock-init.log")
    port = free_port()
    command = [
        sys.executable, "-m", "rasa", "run", "--model", str(stock_model(project)), "--interface", "127.0.0.1",
        "--port", str(port),
    ]
    started = time.monotonic()
    rasa = spawn(command, project, quiet_env(), var_dir / "logs" / "stock-rasa.log")
    return await answering("stock", f"http://127.0.0.1:{port}", STOCK_SCRIPTS, {"rasa": rasa}, started)


async def answering(label: str, base_url: str, scripts: List[Script],
                    processes: Dict[str, subprocess.Popen[bytes]], started: float) -> Running:
    """The started server once its Rasa process answers (its processes stopped if it never does)."""
    try:
        cold = await first_reply(base_url, started, processes["rasa"])
    except BaseException:
        stop_all(processes)
        raise
    print(f"  {label} answered {cold:.1f} s after start", flush=True)
    return Running(label, base_url, scripts, processes, cold)


def stop_all(processes: Dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        stop_group(process)


async def drive_in_turns(servers: List[Running], args: argparse.Namespace) -> List[Measured]:
    """Each server gets `args.seconds` of load, in `args.rounds` slices taken in turn (stock, ours, stock,
    ours, ...), so a machine that gets faster or slower during the run affects both alike; only one server
    is driven at a time. Each server's conversations go on across its slices (`Visitors`)."""
    slice_s = args.seconds / args.rounds
    cap = max(1, args.max_messages // args.rounds)
    print(f"  driving {', '.join(s.label for s in servers)} in turns: {args.conversations} conversations, "
          f"{args.rounds} slices of {slice_s:.1f} s each", flush=True)
    visitors = {s.label: new_visitors(args.conversations, f"bench-{s.label}") for s in servers}
    loads: Dict[str, List[LoadResult]] = {s.label: [] for s in servers}
    cpu_s: Dict[str, Dict[str, float]] = {s.label: dict.fromkeys(s.processes, 0.0) for s in servers}
    for _round in range(args.rounds):
        for server in servers:
            before = {name: cpu_seconds(process.pid) for name, process in server.processes.items()}
            loads[server.label].append(await run_load(
                server.base_url, server.scripts, args.conversations, slice_s, cap, visitors=visitors[server.label]
            ))
            for name, process in server.processes.items():
                cpu_s[server.label][name] += cpu_seconds(process.pid) - before[name]
    measured = []
    for server in servers:
        load = merged(loads[server.label])
        answered = max(1, load.completed)
        cpu = {name: seconds * 1000 / answered for name, seconds in cpu_s[server.label].items()}
        memory = {name: peak_rss_mib(process.pid) for name, process in server.processes.items()}
        measured.append(Measured(server.label, server.cold_start_s, load, memory, cpu))
    return measured


def final_line(ours: LoadResult, stock: LoadResult | None, conversations: int) -> str:
    ratio = f" = {ours.throughput / stock.throughput:.1f}x stock" if stock and stock.throughput else ""
    return (
        f"throughput {ours.throughput:.1f} msg/s at {conversations} conversations{ratio}; "
        f"p95 {percentile(ours.latencies(), 0.95):.0f} ms; crisis p95 {percentile(ours.latencies('risk'), 0.95):.0f} ms"
    )


async def compare_with_stock(args: argparse.Namespace) -> int:
    var_dir = Path(tempfile.mkdtemp(prefix="bench-var-"))
    print(f"Benchmark (Rasa {rasa_version()}; logs in {var_dir}/logs)", flush=True)
    (var_dir / "logs").mkdir(parents=True, exist_ok=True)
    if not OUR_MODEL.exists():
        print(f"no trained model at {OUR_MODEL}: run `make train`", file=sys.stderr)
        return 1
    training_s = None
    if not args.skip_training:
        print("  timing a full training of our assistant (rasa train --force, in a temporary copy)", flush=True)
        training_s = measure_training(var_dir / "logs" / "train.log")
    servers: List[Running] = []
    try:
        if args.against:
            servers.append(await start_ours(var_dir / "against", args.against.resolve(), "baseline"))
        elif not args.skip_stock:
            servers.append(await start_stock(var_dir))
        servers.append(await start_ours(var_dir))
        results = await drive_in_turns(servers, args)
    finally:
        for server in servers:
            stop_all(server.processes)
    ours = results[-1]
    if args.against:
        return report_against(results[0], ours, var_dir)
    stock = results[0] if not args.skip_stock else None
    prod = None
    if args.with_prod:
        from bot.ops.scale import measure

        prod, _problems, _busy = await measure(args.processes, args)
    print()
    if stock:
        print(summary("stock rasa init", stock.load))
    print(summary("ours", ours.load))
    for measured in (stock, ours) if stock else (ours,):
        memory = ", ".join(f"{name} {mib:.0f} MiB" for name, mib in measured.memory_mib.items())
        cpu = ", ".join(f"{name} {ms:.1f}" for name, ms in measured.cpu_ms_per_message.items())
        print(f"{measured.label}: cold start {measured.cold_start_s:.1f} s; peak memory {memory}; "
              f"CPU ms per message: {cpu}")
    if training_s is not None:
        print(f"ours: full training (rasa train --force) {training_s:.0f} s")
    if prod is not None:
        ratio = f" = {prod.throughput / stock.load.throughput:.1f}x stock" if stock and stock.load.throughput else ""
        print(f"production topology ({args.processes} processes, nginx, PostgreSQL, Redis): "
              f"{prod.throughput:.1f} msg/s{ratio}; p95 {percentile(prod.latencies(), 0.95):.0f} ms; "
              f"crisis p95 {percentile(prod.latencies('risk'), 0.95):.0f} ms")
    print(final_line(ours.load, stock.load if stock else None, args.conversations), flush=True)
    return exit_status([ours], var_dir)


def exit_status(checked: List[Measured], var_dir: Path) -> int:
    """0 when none of `checked` had errors or a risk reply without the crisis line (the run's files are
    then deleted), 1 otherwise (its logs are kept and named)."""
    healthy = all(m.load.errors == 0 and m.load.risk_without_crisis_line() == 0 for m in checked)
    if healthy:
        shutil.rmtree(var_dir, ignore_errors=True)
    else:
        print(f"errors or risk messages without the crisis line: logs kept in {var_dir}/logs", flush=True)
    return 0 if healthy else 1


def report_against(baseline: Measured, ours: Measured, var_dir: Path) -> int:
    """This checkout against another one of the same assistant, driven in turns: the A/B of a change."""
    print()
    for measured in (baseline, ours):
        cpu = ", ".join(f"{name} {ms:.2f}" for name, ms in measured.cpu_ms_per_message.items())
        print(summary(measured.label, measured.load))
        print(f"{measured.label}: CPU ms per message: {cpu}")
    speed = ours.load.throughput / baseline.load.throughput if baseline.load.throughput else 0.0
    cpu_ratio = ours.cpu_ms_per_message["rasa"] / max(1e-9, baseline.cpu_ms_per_message["rasa"])
    print(f"against the baseline: throughput {speed:.3f}x, Rasa CPU per message {cpu_ratio:.3f}x", flush=True)
    return exit_status([baseline, ours], var_dir)


def parse_args(argv: List[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.ops.bench", description=__doc__)
    parser.add_argument("--conversations", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration per server")
    parser.add_argument("--rounds", type=int, default=4,
                        help="slices each server's load is cut into, driven in turns with the other server")
    parser.add_argument("--max-messages", type=int, default=20000, help="message cap per server")
    parser.add_argument("--skip-stock", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="drive another checkout of this project (e.g. a git worktree of an earlier commit, "
                             "with its own trained model) in turns with this one instead of the stock bot")
    parser.add_argument("--prod", action="store_true", help="scale test: production topology, 1 vs N processes")
    parser.add_argument("--processes", type=int, default=2, help="Rasa processes for --prod / --with-prod")
    parser.add_argument("--with-prod", action="store_true",
                        help="also drive the production topology (needs nginx, PostgreSQL, Redis)")
    return parser.parse_args(argv)


def main(argv: List[str] | None = None) -> int:
    args = parse_args(argv)
    if args.prod:
        from bot.ops.scale import compare_process_counts

        return asyncio.run(compare_process_counts(args))
    return asyncio.run(compare_with_stock(args))


if __name__ == "__main__":
    sys.exit(main())
