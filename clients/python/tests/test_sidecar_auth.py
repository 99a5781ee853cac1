"""Tests of toolbridge_sidecar_auth against the real sidecar process and a loopback Auth0 stand-in.

Run from the repository root after `npm run build`:
    /usr/bin/python3 -m unittest discover -s clients/python/tests -v

With TOOLBRIDGE_SIDECAR_AUTH_INSTALLED=1 they test the installed package (a wheel
or the sdist in a venv, as CI does) instead of the source tree. From an unpacked
sdist, TOOLBRIDGE_SIDECAR_ROOT names the sidecar's checkout (with `npm run build` done).
"""

from __future__ import annotations

import json
import logging
import hashlib
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import unittest
from urllib.parse import parse_qs
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(os.environ.get("TOOLBRIDGE_SIDECAR_ROOT") or Path(__file__).resolve().parents[3])
INSTALLED = os.environ.get("TOOLBRIDGE_SIDECAR_AUTH_INSTALLED") == "1"
if not INSTALLED:
    sys.path.insert(0, str(ROOT / "clients" / "python"))

import toolbridge_sidecar_auth as sa  # noqa: E402

SIDECAR_SECRET = "python-client-sidecar-secret-" + secrets.token_hex(8)
CLIENT_ID = "python-test-client"
CLIENT_SECRET = "python-test-client-secret-" + secrets.token_hex(8)
AUDIENCES = ["https://toolbridgeapi.erauner.dev", "https://reports.example"]


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Auth0StandIn(BaseHTTPRequestHandler):
    """POST /oauth/token as a standard server answers it: a form, a token for the right credentials, else 401."""

    issued: list[str] = []
    audience_of: dict[str, str] = {}

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["content-length"])).decode()
        if self.headers.get("content-type") != "application/x-www-form-urlencoded":
            self._send(400, {"error": "invalid_request", "error_description": "form bodies only"})
            return
        body = {name: values[0] for name, values in parse_qs(raw).items()}
        if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
            self._send(401, {"error": "access_denied", "error_description": "Unauthorized"})
            return
        audience = body.get("audience", "")
        if audience not in AUDIENCES:
            self._send(403, {"error": "access_denied", "error_description": "Service not found"})
            return
        token = "eyJ.python-test-token-" + secrets.token_hex(16)
        Auth0StandIn.issued.append(token)
        Auth0StandIn.audience_of[token] = audience
        self._send(200, {"access_token": token, "expires_in": 86400, "token_type": "Bearer"})

    @classmethod
    def first(cls, audience: str = AUDIENCES[0]) -> str:
        """The first token issued for an audience (the sidecar's default unless named)."""
        return next(token for token in cls.issued if cls.audience_of[token] == audience)

    @classmethod
    def latest(cls, audience: str = AUDIENCES[0]) -> str:
        """The newest token issued for an audience: the one the sidecar serves, whatever refreshes earlier tests caused."""
        return [token for token in cls.issued if cls.audience_of[token] == audience][-1]

    def _send(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Api(BaseHTTPRequestHandler):
    """The ToolBridge API: rejects the first `reject` requests with 401, records Authorization headers."""

    seen: list[str] = []
    reject = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        Api.seen.append(self.headers.get("authorization", ""))
        status = 401 if Api.reject > 0 else 200
        Api.reject = max(0, Api.reject - 1)
        data = b"unauthorized" if status == 401 else b"ok"
        self.send_response(status)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Sidecar:
    """The built sidecar (`node dist/cli.js`), as users run it."""

    def __init__(self, token_url: str, client_secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "TOOLBRIDGE_AUTH0_CLIENT_ID": CLIENT_ID,
            "TOOLBRIDGE_AUTH0_CLIENT_SECRET": client_secret,
            "TOOLBRIDGE_AUTH0_TOKEN_URL": token_url,
            "TOOLBRIDGE_AUTH0_AUDIENCE": ",".join(AUDIENCES),
            "TOOLBRIDGE_SIDECAR_SECRET": SIDECAR_SECRET,
            "TOOLBRIDGE_SIDECAR_HOST": host,
            "TOOLBRIDGE_SIDECAR_PORT": str(port),
        }
        self.process = subprocess.Popen(
            ["node", str(ROOT / "dist" / "cli.js")], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.lines: list[str] = []
        self.port = 0
        ready = threading.Event()
        settled: list[str] = []

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line)
                match = re.search(rf'"Server listening at http://{re.escape(host)}:(\d+)"', line)
                if match:
                    self.port = int(match.group(1))
                if '"event":"token_refreshed"' in line or '"event":"token_refresh_failed"' in line:
                    settled.append(line)
                    if len(settled) == len(AUDIENCES):  # one start-up fetch per audience
                        ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(15) or not self.port:
            self.process.kill()
            raise RuntimeError("the sidecar did not start; run `npm run build` first")
        self.url = f"http://{host}:{self.port}"

    def refresh_calls(self) -> float:
        with httpx.Client() as client:
            metrics = client.get(self.url + "/metrics").text
        match = re.search(r'^tokensidecar_token_responses_total\{route="/token/refresh",code="200"\} (\S+)$', metrics, re.M)
        return float(match.group(1)) if match else 0.0

    def responses(self, route: str, code: int) -> float:
        with httpx.Client() as client:
            metrics = client.get(self.url + "/metrics").text
        match = re.search(rf'^tokensidecar_token_responses_total\{{route="{route}",code="{code}"\}} (\S+)$', metrics, re.M)
        return float(match.group(1)) if match else 0.0

    def refused(self, reason: str) -> float:
        with httpx.Client() as client:
            metrics = client.get(self.url + "/metrics").text
        match = re.search(rf'^tokensidecar_forced_refresh_refused_total\{{audience="{AUDIENCES[0]}",reason="{reason}"\}} (\S+)$', metrics, re.M)
        return float(match.group(1)) if match else 0.0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SidecarAuthTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.auth0 = serve(Auth0StandIn)
        token_url = f"http://127.0.0.1:{cls.auth0.server_address[1]}/oauth/token"
        cls.token_url = token_url
        cls.extra_lines: list[Sidecar] = []
        cls.sidecar = Sidecar(token_url, CLIENT_SECRET)
        cls.broken = Sidecar(token_url, "not-the-client-secret")  # answers 503: Auth0 says access_denied
        cls.api = serve(Api)
        cls.api_url = f"http://127.0.0.1:{cls.api.server_address[1]}/notes"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.sidecar.stop()
        cls.broken.stop()
        for server in (cls.auth0, cls.api):
            server.shutdown()
            server.server_close()
        logged = "".join(cls.sidecar.lines + cls.broken.lines + [line for s in cls.extra_lines for line in s.lines])
        for secret in [SIDECAR_SECRET, CLIENT_SECRET, *Auth0StandIn.issued]:
            assert secret not in logged, "a secret reached the sidecar's log"

    def setUp(self) -> None:
        Api.seen.clear()
        Api.reject = 0
        sa._static_warned = False

    def assert_no_secret(self, text: str) -> None:
        for secret in [SIDECAR_SECRET, CLIENT_SECRET, *Auth0StandIn.issued]:
            self.assertNotIn(secret, text)

    def test_sets_the_header_sync(self) -> None:
        auth = sa.SidecarAuth(self.sidecar.url, SIDECAR_SECRET)
        self.addCleanup(auth.client.close)
        with httpx.Client(auth=auth) as client:
            response = client.get(self.api_url)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(Api.seen, [f"Bearer {Auth0StandIn.latest()}"])

    def test_sets_the_header_async_and_from_the_environment(self) -> None:
        async def call() -> httpx.Response:
            os.environ["TOOLBRIDGE_TOKEN_SIDECAR_URL"] = self.sidecar.url
            os.environ["TOOLBRIDGE_SIDECAR_SECRET"] = SIDECAR_SECRET
            try:
                auth = sa.SidecarAuth()
            finally:
                del os.environ["TOOLBRIDGE_TOKEN_SIDECAR_URL"], os.environ["TOOLBRIDGE_SIDECAR_SECRET"]
            async with httpx.AsyncClient(auth=auth) as client:
                first = await client.get(self.api_url)
                await client.get(self.api_url)
            await auth.client.aclose()
            return first

        import asyncio

        self.assertEqual(asyncio.run(call()).status_code, 200)
        self.assertEqual(Api.seen, [f"Bearer {Auth0StandIn.latest()}"] * 2)

    def test_401_refreshes_and_retries_once(self) -> None:
        before = self.sidecar.refresh_calls()
        Api.reject = 1
        auth = sa.SidecarAuth(self.sidecar.url, SIDECAR_SECRET)
        self.addCleanup(auth.client.close)
        with httpx.Client(auth=auth) as client:
            response = client.get(self.api_url)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(len(Api.seen), 2, "one retry")
        self.assertEqual(self.sidecar.refresh_calls() - before, 1, "POST /token/refresh was called once")

    def test_refresh_names_the_rejected_token_by_its_sha256(self) -> None:
        client = sa.SidecarClient(self.sidecar.url, SIDECAR_SECRET)
        self.addCleanup(client.close)
        before = self.sidecar.refused("not_current")
        current = client.token()
        self.assertEqual(client.refresh("an-older-token-the-api-rejected"), current)
        self.assertEqual(self.sidecar.refused("not_current") - before, 1, "the sidecar saw a hash that is not its token's")
        self.assertEqual(sa._refresh_body("abc"), {"rejected_token_sha256": hashlib.sha256(b"abc").hexdigest()})
        self.assertIsNone(sa._refresh_body(None))

    def test_the_auth_flows_pass_the_rejected_token(self) -> None:
        Api.reject = 1
        auth = sa.SidecarAuth(self.sidecar.url, SIDECAR_SECRET)
        self.addCleanup(auth.client.close)
        seen: list[str | None] = []
        refresh = auth.client.refresh
        auth.client.refresh = lambda rejected=None: (seen.append(rejected), refresh(rejected))[1]  # type: ignore[method-assign]
        served = Auth0StandIn.latest()
        with httpx.Client(auth=auth) as client:
            client.get(self.api_url)
        self.assertEqual(seen, [served])

        async def call() -> None:
            Api.reject = 1
            aseen: list[str | None] = []
            arefresh = auth.client.arefresh

            async def recording(rejected: str | None = None) -> str:
                aseen.append(rejected)
                return await arefresh(rejected)

            auth.client.arefresh = recording  # type: ignore[method-assign]
            served = Auth0StandIn.latest()
            async with httpx.AsyncClient(auth=auth) as client:
                await client.get(self.api_url)
            await auth.client.aclose()
            self.assertEqual(aseen, [served])

        import asyncio

        asyncio.run(call())

    def test_no_second_retry(self) -> None:
        before = self.sidecar.refresh_calls()
        Api.reject = 5

        async def call() -> httpx.Response:
            auth = sa.SidecarAuth(self.sidecar.url, SIDECAR_SECRET)
            try:
                async with httpx.AsyncClient(auth=auth) as client:
                    return await client.get(self.api_url)
            finally:
                await auth.client.aclose()

        import asyncio

        self.assertEqual(asyncio.run(call()).status_code, 401)
        self.assertEqual(len(Api.seen), 2, "the request is sent twice, never three times")
        self.assertEqual(self.sidecar.refresh_calls() - before, 1)

    def bad_deploy(self) -> tuple[str, Callable[[str, int], list[str]], list[str], Sidecar]:
        """Fly's tokens.process.<app>.internal during a bad blue-green deploy, on one port:
        127.0.0.2 a green sidecar whose token fetch failed (503 token_unavailable),
        127.0.0.4 refuses, 127.0.0.3 never answers, 127.0.0.1 the healthy sidecar."""
        port = self.sidecar.port
        green = Sidecar(self.token_url, "not-the-client-secret", host="127.0.0.2", port=port)
        self.addCleanup(green.stop)
        self.extra_lines.append(green)
        silent = socket.socket()
        silent.bind(("127.0.0.3", port))
        silent.listen(0)
        queued = []
        for _ in range(8):  # fill the queue: further connection attempts get no answer at all
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.3", port))
            except BlockingIOError:
                pass
            queued.append(c)
        self.addCleanup(lambda: [s.close() for s in [silent, *queued]])
        asked: list[str] = []
        answer = ["127.0.0.2", "127.0.0.4", "127.0.0.3", "127.0.0.1"]

        def resolve(host: str, port_: int) -> list[str]:
            asked.append(host)
            self.assertEqual(port_, port)
            return list(answer)

        self.answer = answer
        return f"http://tokens.process.my-app.internal:{port}", resolve, asked, green

    def test_a_503_moves_on_to_the_next_address_within_one_call(self) -> None:
        url, resolve, asked, green = self.bad_deploy()
        client = sa.SidecarClient(url, SIDECAR_SECRET, timeout=2.0, connect_attempt_timeout=0.3, resolve=resolve)
        self.addCleanup(client.close)
        started = time.monotonic()
        self.assertEqual(client.token(), Auth0StandIn.latest(), "the 503 was not the answer")
        elapsed = time.monotonic() - started
        self.assertGreaterEqual(elapsed, 0.25, "one attempt timeout for the silent address")
        self.assertLess(elapsed, 2.0, "within the call's timeout")
        self.assertEqual(green.responses("/token", 503), 1, "the green sidecar was asked once and answered 503")
        self.assertEqual(client.token(), Auth0StandIn.latest())
        self.assertEqual(green.responses("/token", 503), 1, "the next call goes to the address that answered last")
        self.assertEqual(asked, ["tokens.process.my-app.internal"], "one DNS query for both calls")

        async def call() -> str:
            aclient = sa.SidecarClient(url, SIDECAR_SECRET, timeout=2.0, connect_attempt_timeout=0.3, resolve=resolve)
            try:
                return await aclient.atoken()
            finally:
                await aclient.aclose()

        import asyncio

        self.assertEqual(asyncio.run(call()), Auth0StandIn.latest(), "async too")
        self.assertEqual(green.responses("/token", 503), 2)

    def test_with_no_healthy_address_the_503_is_the_answer_within_the_deadline(self) -> None:
        url, resolve, asked, green = self.bad_deploy()
        self.answer[:] = ["127.0.0.4", "127.0.0.3", "127.0.0.2"]
        client = sa.SidecarClient(url, SIDECAR_SECRET, timeout=2.0, connect_attempt_timeout=0.2, resolve=resolve)
        self.addCleanup(client.close)
        with self.assertRaises(sa.SidecarUnavailableError) as caught:
            client.token()
        self.assertIsNotNone(caught.exception.retry_after)
        self.answer[:] = ["127.0.0.4"]
        with self.assertRaisesRegex(sa.SidecarUnreachableError, "ConnectError"):
            client.token()
        self.assertEqual(len(asked), 2, "every address failed, so DNS is asked again")
        self.answer[:] = []
        with self.assertRaisesRegex(sa.SidecarUnreachableError, "gaierror"):
            client.token()

        # A silent address that takes the whole deadline leaves no time for the healthy one.
        self.answer[:] = ["127.0.0.3", "127.0.0.1"]
        slow = sa.SidecarClient(url, SIDECAR_SECRET, timeout=0.3, connect_attempt_timeout=5.0, resolve=resolve)
        self.addCleanup(slow.close)
        started = time.monotonic()
        with self.assertRaises(sa.SidecarUnreachableError):
            slow.token()
        self.assertLess(time.monotonic() - started, 1.5, "bounded by the call's timeout, not the attempts")

        async def acall() -> None:
            aclient = sa.SidecarClient(url, SIDECAR_SECRET, timeout=2.0, connect_attempt_timeout=0.2, resolve=resolve)
            try:
                self.answer[:] = ["127.0.0.4", "127.0.0.2"]
                with self.assertRaises(sa.SidecarUnavailableError):
                    await aclient.atoken()
                self.answer[:] = []
                with self.assertRaises(sa.SidecarUnreachableError):
                    await aclient.atoken()
            finally:
                await aclient.aclose()

        import asyncio

        asyncio.run(acall())

    def test_a_401_ends_the_call_without_asking_the_next_address(self) -> None:
        url, resolve, asked, green = self.bad_deploy()
        self.answer[:] = ["127.0.0.1", "127.0.0.2"]
        before = self.sidecar.responses("/token", 401)
        wrong = sa.SidecarClient(url, "not-the-sidecar-secret-0123456789abcdef", resolve=resolve)
        self.addCleanup(wrong.close)
        with self.assertRaises(sa.SidecarAuthError):
            wrong.token()
        self.assertEqual(self.sidecar.responses("/token", 401) - before, 1)
        self.assertEqual(green.responses("/token", 401), 0, "the second address was not asked")

    def test_failover_to_the_next_address_within_one_call(self) -> None:
        """Fly's DNS name lists every tokens Machine: one refusing and one silent must not fail the call."""
        port = int(self.sidecar.url.rsplit(":", 1)[1])
        silent = socket.socket()
        silent.bind(("127.0.0.3", port))
        silent.listen(0)
        queued = []
        for _ in range(8):  # fill the queue: further connection attempts get no answer at all
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.3", port))
            except BlockingIOError:
                pass
            queued.append(c)
        self.addCleanup(lambda: [s.close() for s in [silent, *queued]])
        name = "tokens.process.my-app.internal"
        real = socket.getaddrinfo
        asked: list[str] = []

        def resolve(host, *args, **kwargs):  # type: ignore[no-untyped-def]
            if host not in (name, name.encode()):
                return real(host, *args, **kwargs)
            asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port)) for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.1")]

        socket.getaddrinfo = resolve  # type: ignore[assignment]
        self.addCleanup(setattr, socket, "getaddrinfo", real)
        client = sa.SidecarClient(f"http://{name}:{port}", SIDECAR_SECRET, connect_attempt_timeout=0.3)
        self.addCleanup(client.close)
        started = time.monotonic()
        self.assertEqual(client.token(), Auth0StandIn.latest())
        self.assertLess(time.monotonic() - started, 2.0, "one connect timeout for the silent address, then the live one")

        async def call() -> str:
            aclient = sa.SidecarClient(f"http://{name}:{port}", SIDECAR_SECRET, connect_attempt_timeout=0.3)
            try:
                return await aclient.atoken()
            finally:
                await aclient.aclose()

        import asyncio

        self.assertEqual(asyncio.run(call()), Auth0StandIn.latest(), "async too")
        self.assertGreaterEqual(len(asked), 2)

    def test_auth_without_configuration_is_a_clear_error(self) -> None:
        with self.assertRaises(sa.SidecarConfigError):
            sa.SidecarAuth(client=None, url="", secret="")

    def run_header(self, env: dict[str, str], incoming: str | None = None) -> dict[str, str]:
        import asyncio

        async def call() -> dict[str, str]:
            try:
                return await sa.get_auth_header(incoming, env=env)
            finally:
                await sa.aclose_shared_clients()

        return asyncio.run(call())

    def test_fallback_1_the_sidecar(self) -> None:
        header = self.run_header({"TOOLBRIDGE_TOKEN_SIDECAR_URL": self.sidecar.url, "TOOLBRIDGE_SIDECAR_SECRET": SIDECAR_SECRET, "TOOLBRIDGE_JWT_TOKEN": "static"}, "Bearer user")
        self.assertEqual(header, {"Authorization": f"Bearer {Auth0StandIn.latest()}"})

    def test_an_audience_picks_that_audiences_token(self) -> None:
        client = sa.SidecarClient(self.sidecar.url, SIDECAR_SECRET, audience=AUDIENCES[1])
        self.addCleanup(client.close)
        self.assertEqual(client.token(), Auth0StandIn.first(AUDIENCES[1]))
        self.assertEqual(client.refresh("an-older-token"), Auth0StandIn.first(AUDIENCES[1]))
        auth = sa.SidecarAuth(self.sidecar.url, SIDECAR_SECRET, audience=AUDIENCES[1])
        self.addCleanup(auth.client.close)
        with httpx.Client(auth=auth) as http:
            http.get(self.api_url)
        self.assertEqual(Api.seen, [f"Bearer {Auth0StandIn.first(AUDIENCES[1])}"])
        header = self.run_header({
            "TOOLBRIDGE_TOKEN_SIDECAR_URL": self.sidecar.url,
            "TOOLBRIDGE_SIDECAR_SECRET": SIDECAR_SECRET,
            "TOOLBRIDGE_TOKEN_SIDECAR_AUDIENCE": AUDIENCES[1],
        })
        self.assertEqual(header, {"Authorization": f"Bearer {Auth0StandIn.first(AUDIENCES[1])}"})
        default = sa.SidecarClient(self.sidecar.url, SIDECAR_SECRET)
        self.addCleanup(default.close)
        self.assertEqual(default.token(), Auth0StandIn.first(AUDIENCES[0]), "no audience: the sidecar's default")

    def test_an_audience_the_sidecar_does_not_serve_is_a_config_error(self) -> None:
        client = sa.SidecarClient(self.sidecar.url, SIDECAR_SECRET, audience="https://not-configured.example")
        self.addCleanup(client.close)
        with self.assertRaises(sa.SidecarConfigError) as caught:
            client.token()
        self.assertIn("(400)", str(caught.exception))
        self.assertIn(AUDIENCES[1], str(caught.exception), "the sidecar names the audiences it serves")

    def test_fallback_2_the_static_token_with_one_warning(self) -> None:
        with self.assertLogs("toolbridge.sidecar_auth", logging.WARNING) as logs:
            for _ in range(3):
                self.assertEqual(self.run_header({"TOOLBRIDGE_JWT_TOKEN": "static-token"}, "Bearer user"), {"Authorization": "Bearer static-token"})
        self.assertEqual(len(logs.records), 1, "the deprecation warning is logged once")
        self.assertIn("deprecated", logs.output[0])
        self.assertNotIn("static-token", logs.output[0])

    def test_fallback_3_the_per_user_header(self) -> None:
        self.assertEqual(self.run_header({}, "Bearer per-user"), {"Authorization": "Bearer per-user"})
        with self.assertRaises(sa.NoCredentialsError):
            self.run_header({})

    def test_unreachable_sidecar_raises_unless_a_static_token_is_set(self) -> None:
        env = {"TOOLBRIDGE_TOKEN_SIDECAR_URL": f"http://127.0.0.1:{unused_port()}", "TOOLBRIDGE_SIDECAR_SECRET": SIDECAR_SECRET}
        with self.assertRaises(sa.SidecarUnreachableError) as caught:
            self.run_header(env, "Bearer user")
        self.assert_no_secret(str(caught.exception))
        with self.assertLogs("toolbridge.sidecar_auth", logging.WARNING) as logs:
            header = self.run_header({**env, "TOOLBRIDGE_JWT_TOKEN": "static-token"})
        self.assertEqual(header, {"Authorization": "Bearer static-token"})
        self.assertIn("falling back", logs.output[0])
        self.assert_no_secret("\n".join(logs.output))

    def test_503_raises_a_typed_error_unless_a_static_token_is_set(self) -> None:
        env = {"TOOLBRIDGE_TOKEN_SIDECAR_URL": self.broken.url, "TOOLBRIDGE_SIDECAR_SECRET": SIDECAR_SECRET}
        with self.assertRaises(sa.SidecarUnavailableError) as caught:
            self.run_header(env)
        self.assertEqual(caught.exception.code, "SIDECAR_TOKEN_UNAVAILABLE")
        retry_after = caught.exception.retry_after
        self.assertTrue(retry_after is not None and 0 < retry_after <= 60, f"Retry-After counts down to the next attempt: {retry_after}")
        self.assertIn("access_denied", str(caught.exception))
        with self.assertLogs("toolbridge.sidecar_auth", logging.WARNING):
            self.assertEqual(self.run_header({**env, "TOOLBRIDGE_JWT_TOKEN": "static-token"}), {"Authorization": "Bearer static-token"})

    def test_wrong_sidecar_secret_always_raises(self) -> None:
        wrong = "wrong-sidecar-secret-" + secrets.token_hex(8)
        env = {"TOOLBRIDGE_TOKEN_SIDECAR_URL": self.sidecar.url, "TOOLBRIDGE_SIDECAR_SECRET": wrong, "TOOLBRIDGE_JWT_TOKEN": "static-token"}
        with self.assertRaises(sa.SidecarAuthError) as caught:
            self.run_header(env)
        self.assertIn("TOOLBRIDGE_SIDECAR_SECRET must match", str(caught.exception))
        self.assertNotIn(wrong, str(caught.exception))
        auth = sa.SidecarAuth(self.sidecar.url, wrong)
        self.addCleanup(auth.client.close)
        with httpx.Client(auth=auth) as client:
            with self.assertRaises(sa.SidecarAuthError):
                client.get(self.api_url)
        self.assertEqual(Api.seen, [], "nothing is sent to the API without a token")

    def test_url_without_secret_is_a_config_error(self) -> None:
        with self.assertRaises(sa.SidecarConfigError):
            self.run_header({"TOOLBRIDGE_TOKEN_SIDECAR_URL": self.sidecar.url})

    def test_calls_time_out(self) -> None:
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        try:
            client = sa.SidecarClient(f"http://127.0.0.1:{silent.getsockname()[1]}", SIDECAR_SECRET, timeout=0.3)
            started = time.monotonic()
            with self.assertRaises(sa.SidecarUnreachableError) as caught:
                client.token()
            self.assertLess(time.monotonic() - started, 2.0)
            self.assertIn("ReadTimeout", str(caught.exception))
            client.close()
        finally:
            silent.close()

    def test_connections_are_reused(self) -> None:
        client = sa.SidecarClient(self.sidecar.url, SIDECAR_SECRET)
        try:
            client.token()
            pool = client._client()._transport._pool  # type: ignore[attr-defined]
            first = list(pool.connections)
            client.token()
            self.assertEqual(list(pool.connections), first, "the second call used the same connection")
            self.assertEqual(len(first), 1)
            self.assertNotIn(SIDECAR_SECRET, repr(client))
        finally:
            client.close()


if __name__ == "__main__":
    unittest.main()


class PackageTests(unittest.TestCase):
    def test_imported_from_where_it_should_be(self) -> None:
        source = Path(sa.__file__).resolve()
        if INSTALLED:
            self.assertNotIn(str(ROOT / "clients"), str(source), "the installed package, not the source tree")
            self.assertIn("site-packages", str(source))
        else:
            self.assertEqual(source, ROOT / "clients" / "python" / "toolbridge_sidecar_auth" / "__init__.py")
        self.assertTrue((source.parent / "py.typed").is_file(), "typed (PEP 561)")

    @unittest.skipUnless(INSTALLED, "package metadata exists once the package is installed")
    def test_installed_metadata(self) -> None:
        from importlib import metadata

        meta = metadata.metadata("toolbridge-sidecar-auth")
        self.assertEqual(meta["Requires-Python"], ">=3.9")
        classifiers = meta.get_all("Classifier") or []
        self.assertIn("Typing :: Typed", classifiers)
        self.assertIn("License :: OSI Approved :: MIT License", classifiers)
        for minor in range(9, 14):
            self.assertIn(f"Programming Language :: Python :: 3.{minor}", classifiers)
        self.assertIn(f"Programming Language :: Python :: 3.{sys.version_info.minor}", classifiers, "the Python running this is listed")
        urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL") or [])
        self.assertEqual(sorted(urls), ["Documentation", "Homepage", "Issues", "Source"])
        files = [str(f) for f in metadata.files("toolbridge-sidecar-auth") or []]
        self.assertTrue(any(f.endswith(".dist-info/LICENSE") for f in files), "LICENSE is in the wheel")
        self.assertTrue(any(f.endswith("toolbridge_sidecar_auth/py.typed") for f in files))

    def test_version_in_step_with_the_sidecar(self) -> None:
        package = json.loads((ROOT / "package.json").read_text())
        self.assertEqual(sa.__version__, package["version"])

    def test_describe_auth_mode(self) -> None:
        url = "http://tokens.process.app.internal:8787"
        self.assertEqual(
            sa.describe_auth_mode({"TOOLBRIDGE_TOKEN_SIDECAR_URL": url, "TOOLBRIDGE_SIDECAR_SECRET": "s" * 40}),
            f"auto-refresh via the token sidecar at {url}",
        )
        described = sa.describe_auth_mode({
            "TOOLBRIDGE_TOKEN_SIDECAR_URL": "http://user:pw-in-url@tokens.internal:8787/x",
            "TOOLBRIDGE_SIDECAR_SECRET": "the-sidecar-secret-value",
            "TOOLBRIDGE_TOKEN_SIDECAR_AUDIENCE": "https://reports.example",
            "TOOLBRIDGE_JWT_TOKEN": "static-token-value",
        })
        self.assertEqual(
            described,
            "auto-refresh via the token sidecar at http://tokens.internal:8787/x for audience https://reports.example; "
            "falls back to the deprecated static TOOLBRIDGE_JWT_TOKEN",
        )
        for secret in ("pw-in-url", "the-sidecar-secret-value", "static-token-value"):
            self.assertNotIn(secret, described)
        self.assertIn("is NOT set", sa.describe_auth_mode({"TOOLBRIDGE_TOKEN_SIDECAR_URL": url}))
        self.assertEqual(sa.describe_auth_mode({"TOOLBRIDGE_JWT_TOKEN": "x"}), "static token (deprecated TOOLBRIDGE_JWT_TOKEN, never refreshed)")
        self.assertEqual(sa.describe_auth_mode({}), "per-user (the incoming request's Authorization header)")
        os.environ.pop("TOOLBRIDGE_TOKEN_SIDECAR_URL", None)
        self.assertIsInstance(sa.describe_auth_mode(), str, "reads os.environ by default")
