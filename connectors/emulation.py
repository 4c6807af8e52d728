"""What every vendor emulator shares: the ``/__emulator/`` control surface, fault injection,
call statistics, a pinned clock, and a runner that serves an app on loopback in a thread.

A system's emulator subclasses ``Emulator``, registers its own routes in ``add_routes`` and
answers faults in its own wire format (``error_response`` / ``rate_limit_response``).

Control surface (JSON bodies):

    POST /__emulator/reset                      forget all state (and faults, stats)
    POST /__emulator/seed     {...}             system-specific bulk creation
    GET  /__emulator/stats                      {"calls": {"GET /v1/customers": 3, …}, "total": n,
                                                 "requests": [{"method","path","status","at"}…]}
    POST /__emulator/faults   {"error_rate": 0.1, "latency_ms": 0, "burst_429": 3,
                               "retry_after": 1, "apply_then_fail": 1, "drop_connection": false,
                               "path_prefix": "/v1/customers", "seed": 7}
    POST /__emulator/clock    {"advance_seconds": 3600} | {"set": "2026-11-01T00:00:00Z"}
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, TypeVar

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONTROL = "/__emulator/"
T = TypeVar("T")


class EmulatorClock:
    """Emulator time: starts at a fixed instant, moves only when told (or ``follow_wall``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now_value = start or datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.now_value

    def timestamp(self) -> int:
        return int(self.now_value.timestamp())

    def advance(self, seconds: float) -> None:
        self.now_value += timedelta(seconds=seconds)

    def tick(self, seconds: float = 1.0) -> datetime:
        """Advance a little and return the new time (gives each mutation a distinct time)."""
        self.advance(seconds)
        return self.now_value


class WallClock(EmulatorClock):
    """Emulator time that follows the wall clock (as a vendor's servers do), shifted by what
    ``advance`` or a set of ``now_value`` asked for; it keeps moving from there. Several calls
    may read the same second: nothing ticks per write. Pin a test with ``EmulatorClock``."""

    def __init__(self, start: datetime | None = None) -> None:
        self.offset = timedelta(0)
        if start is not None:
            self.offset = start - datetime.now(UTC)

    @property  # type: ignore[override]  # a computed attribute where the base stores one
    def now_value(self) -> datetime:
        return datetime.now(UTC) + self.offset

    @now_value.setter
    def now_value(self, value: datetime) -> None:
        self.offset = value - datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def follow_wall(clocks: list[EmulatorClock], stop: threading.Event, interval: float = 0.05) -> None:
    """Move emulator clocks with the wall clock until ``stop`` is set (run it in a thread).

    For long runs whose vendors' timestamps must pass as real ones do (webhook signatures, token
    expiry, limit windows, event times). Never backwards: a clock an emulator ticked ahead of
    the wall (one tick per write) keeps its time until the wall passes it."""
    starts = [c.now_value for c in clocks]
    t0 = time.monotonic()
    while not stop.wait(interval):
        elapsed = timedelta(seconds=time.monotonic() - t0)
        for clock, start in zip(clocks, starts, strict=True):
            clock.now_value = max(clock.now_value, start + elapsed)


@dataclass
class Faults:
    error_rate: float = 0.0
    latency_ms: int = 0
    burst_429: int = 0
    retry_after: float = 1.0
    apply_then_fail: int = 0  # the next N writes are applied, then answered 500
    apply_then_fail_rate: float = 0.0  # or each write with this probability
    drop_connection: bool = False
    path_prefix: str = ""
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def applies(self, path: str) -> bool:
        return path.startswith(self.path_prefix) if self.path_prefix else not path.startswith(CONTROL)


@dataclass
class Stats:
    calls: Counter[str] = field(default_factory=Counter)
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults_injected: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    peak_in_flight: int = 0  # the most API requests being answered at once (concurrency proofs)

    def to_json(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), "total": sum(self.calls.values()),
                "requests": self.requests[-5000:], "faults_injected": dict(self.faults_injected),
                "peak_in_flight": self.peak_in_flight}


class Emulator:
    """Base class. Subclasses implement ``add_routes``, ``reset_state``, ``seed`` and the
    system's error shapes."""

    system = "emulator"
    WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, clock: EmulatorClock | None = None) -> None:
        self.clock = clock or EmulatorClock()
        self.faults = Faults()
        self.stats = Stats()
        self.lock = asyncio.Lock()  # handlers mutate shared state; serialise where needed
        self.app = web.Application(middlewares=[self._middleware], client_max_size=8 * 1024 * 1024)
        self.app.router.add_post(CONTROL + "reset", self._reset)
        self.app.router.add_post(CONTROL + "seed", self._seed)
        self.app.router.add_get(CONTROL + "stats", self._stats)
        self.app.router.add_post(CONTROL + "faults", self._faults)
        self.app.router.add_post(CONTROL + "clock", self._clock)
        self.add_routes(self.app.router)
        self.reset_state()

    # -- to implement ---------------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    def reset_state(self) -> None:
        raise NotImplementedError

    async def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def error_response(self, status: int, message: str) -> web.StreamResponse:
        return web.json_response({"error": message}, status=status)

    def rate_limit_response(self, retry_after: float) -> web.StreamResponse:
        return web.json_response({"error": "rate limited"}, status=429,
                                 headers={"Retry-After": str(int(retry_after))})

    def stat_key(self, request: web.Request) -> str:
        """How a call is counted in stats; override to fold ids out of paths."""
        resource = request.match_info.route.resource
        canonical = resource.canonical if resource is not None else request.path
        return f"{request.method} {canonical}"

    # -- machinery --------------------------------------------------------------------------

    def set_faults(self, **values: Any) -> None:
        seed = values.pop("seed", None)
        self.faults = Faults(**values)
        if seed is not None:
            self.faults.rng = random.Random(seed)

    def faults_apply(self, request: web.Request) -> bool:
        """Whether injected faults may hit this request (override to exempt e.g. OAuth routes)."""
        return self.faults.applies(request.path)

    def is_write(self, request: web.Request) -> bool:
        """Whether a request changes state (apply-then-fail only fires on writes)."""
        return request.method in self.WRITE_METHODS

    async def serve(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Run the handler; override to wrap it (auth, throttles) inside the fault machinery."""
        return await handler(request)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL):
            return await handler(request)
        self.stats.calls[self.stat_key(request)] += 1
        stats = self.stats
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            return await self._answer(request, handler)
        finally:
            stats.in_flight -= 1

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        faults = self.faults
        applies = self.faults_apply(request)
        if applies:
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            if faults.burst_429 > 0:
                faults.burst_429 -= 1
                self.stats.faults_injected["429"] += 1
                return self._record(request, self.rate_limit_response(faults.retry_after))
            if faults.error_rate and faults.rng.random() < faults.error_rate:
                self.stats.faults_injected["5xx"] += 1
                return self._record(request, self.error_response(503, "injected service unavailable"))
        response = await self.serve(request, handler)
        if applies and self.is_write(request) and response.status < 400 and (
                faults.apply_then_fail > 0
                or (faults.apply_then_fail_rate and faults.rng.random() < faults.apply_then_fail_rate)):
            faults.apply_then_fail = max(0, faults.apply_then_fail - 1)
            self.stats.faults_injected["apply_then_fail"] += 1
            if faults.drop_connection and request.transport is not None:
                request.transport.close()
            return self._record(request, self.error_response(500, "injected failure after apply"))
        return self._record(request, response)

    def _record(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        if not response.prepared:  # the server's own time, as every vendor sends it (not the host's)
            response.headers["Date"] = format_datetime(self.clock.now().astimezone(UTC), usegmt=True)
        self.stats.requests.append({"method": request.method, "path": request.path,
                                    "query": request.query_string, "status": response.status,
                                    "at": self.clock.now().isoformat()})
        return response

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset_state()
        self.faults = Faults()
        self.stats = Stats()
        return web.json_response({"ok": True})

    async def _seed(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        return web.json_response(await self.seed(body))

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.to_json())

    async def _faults(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        try:
            self.set_faults(**body)
        except TypeError as exc:
            return web.json_response({"error": f"unknown fault setting: {exc}"}, status=400)
        return web.json_response({"ok": True})

    async def _clock(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        if "advance_seconds" in body:
            self.clock.advance(float(body["advance_seconds"]))
        if "set" in body:
            self.clock.now_value = datetime.fromisoformat(str(body["set"]).replace("Z", "+00:00"))
        return web.json_response({"now": self.clock.now().isoformat()})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RunningEmulator:
    """An emulator served on 127.0.0.1 from a background thread with its own event loop."""

    def __init__(self, emulator: Emulator, port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.emulator = emulator
        # No port asked for: bind one now and keep the socket, so no other process (a parallel
        # test worker) can take the port between choosing it and serving on it.
        self._socket: socket.socket | None = None
        if not port:
            self._socket = socket.socket()
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind(("127.0.0.1", 0))
            self._socket.listen(128)
            self._socket.setblocking(False)
            port = self._socket.getsockname()[1]
        self.port = port
        self.ssl_context = ssl_context
        scheme = "https" if ssl_context else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name=f"emulator-{emulator.system}", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self._runner = web.AppRunner(self.emulator.app, access_log=None)
            self.loop.run_until_complete(self._runner.setup())
            site: web.BaseSite = (
                web.SockSite(self._runner, self._socket, ssl_context=self.ssl_context) if self._socket is not None
                else web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context))
            self.loop.run_until_complete(site.start())
        except BaseException as exc:  # surfaced to the starting thread
            self._error = exc
            self.loop.close()  # never served: nothing else would close it (its self-pipe leaks)
            if self._socket is not None:
                self._socket.close()
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._runner.cleanup())
        self.loop.close()

    def start(self) -> RunningEmulator:
        self._thread.start()
        self._ready.wait(30)
        if self._error:
            raise RuntimeError(f"{self.emulator.system} emulator failed to start: {self._error}")
        return self

    def call(self, coro: Awaitable[Any]) -> Any:
        """Run a coroutine on the emulator's loop (for direct state inspection in tests)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)  # type: ignore[arg-type]

    def on_loop(self, fn: Callable[[], T]) -> T:
        """Run a synchronous emulator mutation on the emulator's own loop: its state is not
        shared across threads, and only there do mutations schedule their webhook deliveries."""
        async def run() -> T:
            return fn()
        result: T = self.call(run())
        return result

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def __enter__(self) -> RunningEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
