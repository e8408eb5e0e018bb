"""Benchmark: what serving adds to prediction, for one Cityscapes-size (1024x2048) PNG, on this machine.

1. In process: the median seconds of ``Predictor.predict_bytes`` (decode, resize, model, resize back), the baseline,
   and of ``predict_array`` on the decoded image (resizes and model only) for context.
2. The web app's JSON API (``POST /api/predict``) through a real ``gunicorn app:app`` on 127.0.0.1, one request at
   a time: the median latency (upload, prediction, mask PNG, base64, JSON, download) and its ratio to (1),
   measured alternately with (1) so that both see the same machine state, judged faster, slower or within the
   noise from those samples (seglib.bench.ratio_phrase), and split by the app's Server-Timing header into
   prediction, answer encoding and the rest. Goal: at most 1.2x.
3. ``--clients`` concurrent clients (threads with urllib) for ``--seconds``: requests, throughput, p50/p99
   latency, errors (a non-200 answer or an exception; goal 0) and the peak resident memory (VmHWM) of gunicorn's
   master and workers. The default 8 clients are what one worker admits (2 prediction slots + 6 waiting,
   ``SEGLIB_MAX_WAITING_PREDICTIONS``), so none should be refused.
4. Overload: ``--overload-clients`` (default three times what the workers admit) for ``--seconds``, each waiting
   the ``Retry-After`` of a 503 before its next request, as a well-behaved client does: the share of 503s, the
   p50/p99 latency of the requests served (goal: p99 within 2x the p99 at capacity, i.e. extra clients are refused,
   not queued) and the p99 of the 503s themselves (goal: under 1 s).

The same sequential and concurrent measurement runs against Azure ML's scoring server when one is available: an
already running one given by ``--score-url`` (``POST <url>`` with the raw bytes), else ``deploy/azureml/score.py``
started here by the inference server on 127.0.0.1 (``azmlinfsrv`` binds 0.0.0.0 and has no option to change it,
so its own ``run()`` is called with the host constant set to loopback; it cannot be told to pick a free port
either, so a port taken between choosing and binding is retried once on another). Servers' logs are deleted when
they stop cleanly, and kept (their paths printed) when they do not.

The clients run on the same cores as the servers, as a browser on the same machine would.

Usage: python benchmarks/bench_serving.py [--model PATH] [--seconds 20] [--clients 8] [--repeats 10]
                                          [--workers 1] [--threads 16] [--overload-clients N]
                                          [--score-url URL] [--no-score]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from seglib import bench, cityscapes, predict, synthetic, webapp
from seglib.webapp import settings as webapp_settings

ROOT = Path(__file__).resolve().parents[1]
SCORE_SCRIPT = ROOT / "deploy" / "azureml" / "score.py"
_LOOPBACK_AZMLINFSRV = ("import sys, azureml_inference_server_http.constants as constants; "
                        "constants.DEFAULT_HOST = '127.0.0.1'; "
                        "from azureml_inference_server_http.amlserver import run; sys.argv[0] = 'azmlinfsrv'; run()")


def cityscapes_size_png() -> bytes:
    """A generated street scene at Cityscapes' 1024x2048, as a PNG (Pillow's default compression)."""
    image, _ = synthetic.generate_frame(0, "val", 0, cityscapes.FRAME_SIZE)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def post(url: str, data: bytes, timeout: float = 300.0) -> tuple[int, dict[str, float]]:
    """POST ``data``; -> (status, the answer's Server-Timing in ms), after reading and parsing the whole JSON answer
    (as a client must)."""
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            json.loads(response.read())
            return response.status, server_timing(response.headers.get("Server-Timing", ""))
    except urllib.error.HTTPError as error:
        return error.code, {}


def server_timing(header: str) -> dict[str, float]:
    """``"predict;dur=81.2, encode;dur=14.0"`` -> ``{"predict": 81.2, "encode": 14.0}``."""
    timings = {}
    for entry in filter(None, (part.strip() for part in header.split(","))):
        name, *parameters = entry.split(";")
        durations = [float(p.split("=", 1)[1]) for p in parameters if p.strip().startswith("dur=")]
        if durations:
            timings[name.strip()] = durations[0]
    return timings


def seconds_of(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def sequential(url: str, data: bytes, raw: Callable[[], object], repeats: int) -> dict[str, list[float]]:
    """Seconds of each call of ``raw()`` and of each request to ``url``, called in turn ``repeats`` times after one
    untimed round, and of the server's own parts where it reports them (Server-Timing)."""
    raw()
    post(url, data)
    times: dict[str, list[float]] = {"raw": [], "server": []}
    for _ in range(repeats):
        times["raw"].append(seconds_of(raw))
        start = time.perf_counter()
        status, timings = post(url, data)
        times["server"].append(time.perf_counter() - start)
        if status != 200:
            raise RuntimeError(f"{url} answered {status}")
        for name, milliseconds in timings.items():
            times.setdefault(name, []).append(milliseconds / 1000)
    return times


def medians_of(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def run_clients(client, clients: int) -> float:
    """Run ``client`` in ``clients`` threads at once; -> the seconds until the last one returned."""
    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def load_test(url: str, data: bytes, clients: int, seconds: float) -> Load:
    """``clients`` threads POST ``data`` back to back until ``seconds`` have passed."""
    load = Load()
    deadline = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                status, error = post(url, data)[0], None
            except Exception as exception:  # any failure counts as an error, and the client goes on
                status, error = None, f"{type(exception).__name__}: {exception}"
            with load.lock:
                load.latencies.append(time.perf_counter() - start)
                if status != 200:
                    load.errors.append(error or f"HTTP {status}")

    load.seconds = run_clients(client, clients)
    return load


def post_status(url: str, data: bytes, timeout: float = 300.0) -> tuple[int, float | None]:
    """POST ``data``; -> (status, the answer's Retry-After in seconds or None), the answer read to its end."""
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status, None
    except urllib.error.HTTPError as error:
        error.read()
        retry_after = error.headers.get("Retry-After")
        return error.code, float(retry_after) if retry_after and retry_after.isdigit() else None


@dataclass
class Overload:
    served: list[float] = field(default_factory=list)    # seconds of each 200
    refused: list[float] = field(default_factory=list)   # seconds of each 503
    errors: list[str] = field(default_factory=list)      # anything else
    retry_after_missing: int = 0
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def overload_test(url: str, data: bytes, clients: int, seconds: float) -> Overload:
    """``clients`` threads POST ``data`` until ``seconds`` have passed; after a 503 each waits its Retry-After."""
    load = Overload()
    deadline = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                status, retry_after = post_status(url, data)
            except Exception as exception:  # any failure counts as an error, and the client goes on
                status, retry_after = None, None
                error = f"{type(exception).__name__}: {exception}"
            elapsed = time.perf_counter() - start
            with load.lock:
                if status == 200:
                    load.served.append(elapsed)
                elif status == 503:
                    load.refused.append(elapsed)
                    load.retry_after_missing += retry_after is None
                else:
                    load.errors.append(error if status is None else f"HTTP {status}")
            if status == 503:
                time.sleep(max(0.0, min(retry_after or 1.0, deadline - time.monotonic())))

    load.seconds = run_clients(client, clients)
    return load


def percentile_ms(values: list[float], q: float) -> str:
    return f"{1000 * np.percentile(values, q):.0f}" if values else "n/a"


def overload_row(clients: int, load: Overload) -> list[str]:
    total = len(load.served) + len(load.refused) + len(load.errors)
    share = len(load.refused) / total if total else 0.0
    return [str(clients), str(total), str(len(load.served)), f"{share:.0%}", percentile_ms(load.served, 50),
            percentile_ms(load.served, 99), percentile_ms(load.refused, 99), str(len(load.errors))]


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid] + [descendant for child in children for descendant in process_tree(int(child))]


def peak_rss_mib(pid: int) -> float:
    """Sum of the peak resident memory (VmHWM) of ``pid`` and its descendants, in MiB."""
    total_kib = 0
    for process in process_tree(pid):
        try:
            status = Path(f"/proc/{process}/status").read_text()
        except OSError:
            continue
        total_kib += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return total_kib / 1024


def load_row(name: str, load: Load, peak_mib: float | None) -> list[str]:
    latencies = np.array(load.latencies)
    return [name, str(len(latencies)), f"{len(latencies) / load.seconds:.2f}",
            f"{1000 * np.percentile(latencies, 50):.0f}", f"{1000 * np.percentile(latencies, 99):.0f}",
            str(len(load.errors)), "n/a" if peak_mib is None else f"{peak_mib:.0f}"]


class _PortTaken(RuntimeError):
    """Another program bound the chosen port first."""


def _start_scoring_server(model_dir: str, log: Path) -> tuple[subprocess.Popen, int]:
    """Start ``azmlinfsrv`` on a free loopback port, writing ``log``; -> (process, port) once ``GET /`` answers."""
    port = webapp.free_port()
    command = [sys.executable, "-c", _LOOPBACK_AZMLINFSRV, "--entry_script", str(SCORE_SCRIPT),
               "--model_dir", model_dir, "--port", str(port)]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                return process, port
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    webapp.stop_server(process)
    text = log.read_text(errors="replace")
    if "Address already in use" in text:
        raise _PortTaken(f"port {port} was taken")
    raise RuntimeError(f"the scoring server did not start (log kept at {log}):\n{text[-3000:]}")


@contextmanager
def scoring_server(model: Path):
    """``deploy/azureml/score.py`` under Azure ML's inference server on 127.0.0.1; yields (score URL, pid)."""
    handle, name = tempfile.mkstemp(prefix="azmlinfsrv-", suffix=".log")
    os.close(handle)
    log = Path(name)
    with tempfile.TemporaryDirectory() as model_dir:
        (Path(model_dir) / "model.keras").symlink_to(model.resolve())
        try:
            process, port = _start_scoring_server(model_dir, log)
        except _PortTaken:
            process, port = _start_scoring_server(model_dir, log)  # once more, on another free port
        try:
            yield f"http://127.0.0.1:{port}/score", process.pid
        finally:
            webapp.stop_server(process)
    if process.returncode in (0, -15):  # a clean exit, or SIGTERM's default action: stopped as asked
        log.unlink(missing_ok=True)
    else:
        print(f"the scoring server exited with {process.returncode}; its log is kept at {log}", file=sys.stderr)


@contextmanager
def _running(url: str):
    """A scoring server that someone else started: its URL, and no process to read the memory of."""
    yield url, None


def measure_server(name: str, url: str, data: bytes, raw: Callable[[], object], args, pid: int | None):
    """Sequential samples (alternating with the in-process baseline) and the concurrent load of one server."""
    samples = sequential(url, data, raw, args.repeats)
    load = load_test(url, data, args.clients, args.seconds)
    return samples, load_row(name, load, peak_rss_mib(pid) if pid else None), load.errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="the .keras model (default: the newest chapter-9 U-Net)")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each concurrent load (s)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--repeats", type=int, default=10, help="timed sequential requests (the median is printed)")
    parser.add_argument("--workers", type=int, default=webapp.GUNICORN_WORKERS, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=webapp.GUNICORN_THREADS, help="gunicorn threads per worker")
    parser.add_argument("--overload-clients", type=int,
                        help="concurrent clients of the overload report (default: 3x what the workers admit; "
                             "0 skips it)")
    parser.add_argument("--score-url", help="also measure a running score.py server at this URL (POST raw bytes)")
    parser.add_argument("--no-score", action="store_true", help="do not start deploy/azureml/score.py")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.repeats < 1 or args.seconds <= 0:
        parser.error("--clients and --repeats must be at least 1 and --seconds positive")
    if args.overload_clients is not None and args.overload_clients < 0:
        parser.error("--overload-clients must be 0 or more")
    model = (args.model or predict.default_model_path()).resolve()

    data = cityscapes_size_png()
    predictor = predict.Predictor(model)
    image = predict.decode_image(data)
    settings = webapp.default_config()
    waiting = webapp_settings.default_config()["MAX_WAITING_PREDICTIONS"]
    capacity = args.workers * (settings["MAX_CONCURRENT_PREDICTIONS"] + waiting)
    overload_clients = 3 * capacity if args.overload_clients is None else args.overload_clients
    print(f"machine: {bench.machine_description()}")
    print(f"model: {model} (input {predictor.image_size[0]}x{predictor.image_size[1]}); request: a "
          f"{image.shape[0]}x{image.shape[1]} PNG of {len(data) / 2**20:.1f} MiB; gunicorn --workers {args.workers} "
          f"--threads {args.threads}, at most {settings['MAX_CONCURRENT_PREDICTIONS']} predictions at once per "
          f"worker ({webapp.MAX_PREDICTIONS_ENV}) and {capacity} requests admitted in all "
          f"({webapp_settings.MAX_WAITING_ENV}={waiting} waiting per worker); {args.clients} concurrent clients for "
          f"{args.seconds:g} s, then {overload_clients} for the overload report\n")
    model_only = bench.median_seconds(lambda: predictor.predict_array(image), repeats=args.repeats)

    rows, load_rows, errors = [], [], {}
    env = {"SEGLIB_MODEL": str(model), webapp.ENDPOINT_URL_ENV: ""}
    with webapp.gunicorn_server("app:app", cwd=ROOT, env=env, workers=args.workers, threads=args.threads) as server:
        samples, row, errors["web app"] = measure_server("web app (gunicorn app:app)", f"{server.url}/api/predict",
                                                         data, lambda: predictor.predict_bytes(data), args,
                                                         server.process.pid)
        at_capacity_p99 = float(row[4]) / 1000
        overload = (overload_test(f"{server.url}/api/predict", data, overload_clients, args.seconds)
                    if overload_clients else None)
    medians = medians_of(samples)
    verdicts = [f"web app JSON API vs predict_bytes: {bench.ratio_phrase(samples['server'], samples['raw'])}"]
    raw = medians["raw"]
    served = medians["server"]
    parts = medians.get("predict", 0.0) + medians.get("encode", 0.0)
    rows += [["in process: predict_array (resizes + model)", f"{1000 * model_only:.0f}", f"{model_only / raw:.2f}"],
             ["in process: Predictor.predict_bytes (baseline)", f"{1000 * raw:.0f}", "1.00"],
             ["web app JSON API through gunicorn", f"{1000 * served:.0f}", f"{served / raw:.2f}"],
             ["  of which, in the app: predict_bytes", f"{1000 * medians.get('predict', 0):.0f}", ""],
             ["  of which, in the app: mask PNG, shares, JSON", f"{1000 * medians.get('encode', 0):.0f}", ""],
             ["  of which: HTTP, upload, gunicorn, parsing the answer", f"{1000 * (served - parts):.0f}", ""]]
    load_rows.append(row)

    if args.score_url:
        score_server = _running(args.score_url)
    elif SCORE_SCRIPT.is_file() and not args.no_score:
        score_server = scoring_server(model)
    else:
        score_server = None
        print(f"(scoring server not measured: no --score-url, and {SCORE_SCRIPT.relative_to(ROOT)} "
              f"{'skipped by --no-score' if SCORE_SCRIPT.is_file() else 'does not exist'})\n")
    if score_server is not None:
        with score_server as (url, pid):
            samples, row, errors["score.py"] = measure_server("score.py (azmlinfsrv)", url, data,
                                                              lambda: predictor.predict_bytes(data), args, pid)
        medians = medians_of(samples)
        verdicts.append(f"score.py vs its own predict_bytes: {bench.ratio_phrase(samples['server'], samples['raw'])}")
        rows.append(["score.py under Azure ML's inference server", f"{1000 * medians['server']:.0f}",
                     f"{medians['server'] / medians['raw']:.2f} (its own baseline {1000 * medians['raw']:.0f} ms)"])
        load_rows.append(row)

    print("Sequential requests, median latency:\n")
    print(bench.markdown_table(["path", "median ms", "ratio to predict_bytes"], rows))
    print(f"\nJudged from the {args.repeats} alternating samples of each (seglib.bench.compare_times: Mann-Whitney's "
          f"exact test at {bench.SIGNIFICANCE:.0%}): " + "; ".join(verdicts))
    print(f"\n{args.clients} concurrent clients for {args.seconds:g} s:\n")
    print(bench.markdown_table(["server", "requests", "requests/s", "p50 ms", "p99 ms", "errors",
                                "peak RSS MiB (master + workers)"], load_rows))
    for name, found in errors.items():
        if found:
            print(f"\n{name} errors (first 5 of {len(found)}): {found[:5]}")
    if overload is not None:
        print(f"\nOverload: {overload_clients} concurrent clients for {args.seconds:g} s against a web app that admits "
              f"{capacity} prediction requests; a client waits the Retry-After of a 503 before trying again:\n")
        print(bench.markdown_table(["clients", "requests", "served", "503 share", "served p50 ms", "served p99 ms",
                                    "503 p99 ms", "other errors"], [overload_row(overload_clients, overload)]))
        if overload.errors:
            print(f"\noverload errors (first 5 of {len(overload.errors)}): {overload.errors[:5]}")
        if overload.retry_after_missing:
            print(f"\n{overload.retry_after_missing} 503s came without Retry-After")
    ratio = served / raw
    goals = [f"web app p50 <= 1.2x predict_bytes: {'met' if ratio <= 1.2 else 'MISSED'} ({ratio:.2f}x)",
             f"0 errors under load: {'met' if not errors['web app'] else 'MISSED'} ({len(errors['web app'])})"]
    if overload is not None and overload.served:
        served_p99 = float(np.percentile(overload.served, 99))
        refused_p99 = float(np.percentile(overload.refused, 99)) if overload.refused else 0.0
        goals += [f"overload: served p99 <= 2x the p99 at capacity: "
                  f"{'met' if served_p99 <= 2 * at_capacity_p99 else 'MISSED'} "
                  f"({1000 * served_p99:.0f} vs {1000 * at_capacity_p99:.0f} ms)",
                  f"503s answered within 1 s (p99): {'met' if refused_p99 < 1.0 else 'MISSED'} "
                  f"({1000 * refused_p99:.0f} ms)"]
    print("\ngoals: " + "; ".join(goals))


if __name__ == "__main__":
    main()
