"""Bearer tokens for the ToolBridge API from the ToolBridge token sidecar.

Install it as a package (``uv add "toolbridge-sidecar-auth @ git+<repo>#subdirectory=clients/python"``
or ``pip install``), or copy this one file into the MCP server: it needs only the
standard library and httpx, which the MCP server already depends on. Two ways to use it:

* ``httpx.AsyncClient(auth=SidecarAuth(url, secret))`` (or ``httpx.Client``):
  every request gets ``Authorization: Bearer <token>`` from the sidecar's
  ``GET /token``; when the API answers 401, the auth asks the sidecar for a newer
  token (``POST /token/refresh``) and sends the request exactly once more.
* ``await get_auth_header(incoming_authorization)``: the MCP server's fallback
  chain -- the sidecar when ``TOOLBRIDGE_TOKEN_SIDECAR_URL`` is set, else the
  deprecated static ``TOOLBRIDGE_JWT_TOKEN``, else the caller's per-user header.

Every sidecar call has a timeout (2 s by default) and reuses its connections.
When the sidecar's name resolves to several addresses (two ``tokens`` Machines),
each is tried in turn within the same call: a refused or silent one costs at most
the attempt timeout (0.5 s) before the next, and so does one that answers
``503 token_unavailable`` (a Machine without a token, e.g. a new one whose health
check has not passed yet during a deploy). A 401 (wrong secret) ends the call.
No token or secret ever appears in an exception message or a log line.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import ipaddress
import socket
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence

import httpx

__version__ = "0.1.0"
"""In step with the sidecar's package.json (the sidecar's test suite checks it)."""

__all__ = [
    "DEFAULT_CONNECT_ATTEMPT_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "NoCredentialsError",
    "SidecarAuth",
    "SidecarAuthError",
    "SidecarClient",
    "SidecarConfigError",
    "SidecarError",
    "SidecarUnavailableError",
    "SidecarUnreachableError",
    "aclose_shared_clients",
    "describe_auth_mode",
    "get_auth_header",
]

log = logging.getLogger("toolbridge.sidecar_auth")

DEFAULT_TIMEOUT = 2.0
"""Seconds allowed for one sidecar call, over every address tried."""

DEFAULT_CONNECT_ATTEMPT_TIMEOUT = 0.5
"""Seconds to connect to one of the sidecar's addresses before the next (the last gets what is left)."""

RESOLVE_TTL = 5.0
"""Seconds a resolved address list is reused (no DNS query per token call); dropped when every address failed."""

Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses``, in the order to try them."""


class SidecarError(Exception):
    """No token could be had from the sidecar. ``code`` is stable for matching."""

    code = "SIDECAR_ERROR"


class SidecarUnreachableError(SidecarError):
    """No connection to the sidecar, a timeout, or an answer that is not the sidecar's."""

    code = "SIDECAR_UNREACHABLE"


class SidecarAuthError(SidecarError):
    """The sidecar answered 401: ``TOOLBRIDGE_SIDECAR_SECRET`` does not match the sidecar's."""

    code = "SIDECAR_UNAUTHORIZED"


class SidecarUnavailableError(SidecarError):
    """The sidecar answered 503: it holds no valid token right now (see its ``/healthz``)."""

    code = "SIDECAR_TOKEN_UNAVAILABLE"

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SidecarConfigError(SidecarError):
    """The sidecar is configured incompletely in this process's environment."""

    code = "SIDECAR_CONFIG"


class NoCredentialsError(SidecarError):
    """Neither the sidecar, a static token nor a per-user header is available."""

    code = "NO_CREDENTIALS"


class _TryNext(Exception):
    """An answer another sidecar Machine may improve on: no connection, a timeout, or a 503."""

    def __init__(self, failure: SidecarError) -> None:
        super().__init__(str(failure))
        self.failure = failure


def _token_from(response: httpx.Response, base: str) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    token = body.get("access_token")
    if response.status_code == 200 and isinstance(token, str) and token:
        return token
    if response.status_code == 401:
        raise SidecarAuthError(
            f"token sidecar at {base} rejected the sidecar secret (401): "
            "TOOLBRIDGE_SIDECAR_SECRET must match the sidecar's"
        )
    if response.status_code == 503:
        try:
            retry_after: float | None = float(response.headers.get("retry-after", ""))
        except ValueError:
            retry_after = None
        why = body.get("error_description")
        detail = f": {why}" if isinstance(why, str) else ""
        raise _TryNext(SidecarUnavailableError(
            f"token sidecar at {base} has no valid token (503){detail}; see its /healthz",
            retry_after,
        ))
    if response.status_code == 400:
        why = body.get("error_description")
        raise SidecarConfigError(
            f"token sidecar at {base} refused the request (400): "
            f"{why if isinstance(why, str) else 'bad request'}"
        )
    error = body.get("error")
    raise SidecarUnreachableError(
        f"token sidecar at {base} answered {response.status_code} "
        f"{error if isinstance(error, str) else 'without a token'}"
    )


def _system_resolver(host: str, port: int) -> list[str]:
    return _unique(info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


def _unique(addresses: object) -> list[str]:
    seen: list[str] = []
    for address in addresses:  # type: ignore[attr-defined]
        if address not in seen:
            seen.append(address)
    return seen


def _refresh_body(rejected_token: str | None) -> dict[str, str] | None:
    if rejected_token is None:
        return None
    return {"rejected_token_sha256": hashlib.sha256(rejected_token.encode()).hexdigest()}


class SidecarClient:
    """Calls the sidecar's ``/token`` and ``/token/refresh``, sync or async, reusing connections.

    Each call tries the addresses the sidecar's name resolves to in turn, the
    one that answered last first, within ``timeout`` seconds in all.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        audience: str | None = None,
        connect_attempt_timeout: float = DEFAULT_CONNECT_ATTEMPT_TIMEOUT,
        resolve: Resolver | None = None,
    ) -> None:
        """``audience``: one of the sidecar's configured audiences; ``None`` is its default (the first).

        ``resolve``: ``(host, port) -> addresses`` (tests); by default the system resolver.
        """
        self._base = url.rstrip("/")
        parsed = httpx.URL(self._base)
        self._host = parsed.host
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._https = parsed.scheme == "https"
        self._params = {"audience": audience} if audience else None
        self._headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json"}
        self._timeout = timeout
        self._attempt = connect_attempt_timeout
        self._resolve = resolve
        self._resolved: tuple[list[str], float] | None = None
        self._preferred: str | None = None
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        try:
            ipaddress.ip_address(self._host)
            self._literal = True
        except ValueError:
            self._literal = False

    def __repr__(self) -> str:  # never the secret
        return f"SidecarClient({self._base!r})"

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._sync is None:
                self._sync = httpx.Client(headers=self._headers, timeout=self._timeout)
            return self._sync

    def _async_client(self) -> httpx.AsyncClient:
        # An AsyncClient's pool belongs to one event loop; a new loop gets a new client.
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._async is None or self._async_loop is not loop:
                self._async = httpx.AsyncClient(headers=self._headers, timeout=self._timeout)
                self._async_loop = loop
            return self._async

    def _cached(self) -> list[str] | None:
        if self._literal:
            return [self._host]
        if self._resolved is not None and time.monotonic() - self._resolved[1] < RESOLVE_TTL:
            return self._resolved[0]
        return None

    def _remember(self, addresses: Sequence[str]) -> list[str]:
        found = _unique(addresses)
        if not found:
            raise socket.gaierror(f"{self._host} resolved to no address")
        self._resolved = (found, time.monotonic())
        return found

    def _addresses(self) -> list[str]:
        cached = self._cached()
        if cached is not None:
            return cached
        return self._remember((self._resolve or _system_resolver)(self._host, self._port))

    async def _aaddresses(self) -> list[str]:
        cached = self._cached()
        if cached is not None:
            return cached
        if self._resolve is not None:
            return self._remember(self._resolve(self._host, self._port))
        infos = await asyncio.get_running_loop().getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM)
        return self._remember([info[4][0] for info in infos])

    def _unreachable(self, err: Exception) -> SidecarUnreachableError:
        return SidecarUnreachableError(f"token sidecar at {self._base} is unreachable ({type(err).__name__})")

    def _attempts(self, addresses: list[str], deadline: float) -> Generator[tuple[str, dict[str, object]], None, None]:
        """The request arguments for each address, the preferred first, while time is left."""
        ordered = [a for a in addresses if a == self._preferred] + [a for a in addresses if a != self._preferred]
        for i, address in enumerate(ordered):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            connect = left if i == len(ordered) - 1 else min(self._attempt, left)
            extensions = {"sni_hostname": self._host} if self._https else {}
            yield address, {
                "timeout": httpx.Timeout(left, connect=connect),
                "headers": {"Host": httpx.URL(self._base).netloc.decode("ascii")},
                "extensions": extensions,
            }

    def _url(self, address: str, path: str) -> httpx.URL:
        return httpx.URL(self._base + path).copy_with(host=address)

    def _settle(self, failures: list[SidecarError]) -> SidecarError:
        # Every address failed: ask DNS again next time. A Machine that answered 503 says more than a silent one.
        self._resolved = None
        unavailable = [f for f in failures if isinstance(f, SidecarUnavailableError)]
        if unavailable:
            return unavailable[-1]
        if failures:
            return failures[-1]
        return SidecarUnreachableError(f"token sidecar at {self._base} is unreachable (Timeout)")

    def _call(self, method: str, path: str, json: dict[str, str] | None = None) -> str:
        deadline = time.monotonic() + self._timeout
        try:
            addresses = self._addresses()
        except OSError as err:
            raise self._unreachable(err) from None
        failures: list[SidecarError] = []
        for address, options in self._attempts(addresses, deadline):
            try:
                try:
                    response = self._client().request(
                        method, self._url(address, path), json=json, params=self._params, **options  # type: ignore[arg-type]
                    )
                except httpx.HTTPError as err:
                    raise _TryNext(self._unreachable(err)) from None
                token = _token_from(response, self._base)
            except _TryNext as next_:
                failures.append(next_.failure)
                continue
            self._preferred = address
            return token
        raise self._settle(failures)

    async def _acall(self, method: str, path: str, json: dict[str, str] | None = None) -> str:
        deadline = time.monotonic() + self._timeout
        try:
            addresses = await self._aaddresses()
        except OSError as err:
            raise self._unreachable(err) from None
        failures: list[SidecarError] = []
        for address, options in self._attempts(addresses, deadline):
            try:
                try:
                    response = await self._async_client().request(
                        method, self._url(address, path), json=json, params=self._params, **options  # type: ignore[arg-type]
                    )
                except httpx.HTTPError as err:
                    raise _TryNext(self._unreachable(err)) from None
                token = _token_from(response, self._base)
            except _TryNext as next_:
                failures.append(next_.failure)
                continue
            self._preferred = address
            return token
        raise self._settle(failures)

    def token(self) -> str:
        """A valid access token (the sidecar is the cache, so ask every time)."""
        return self._call("GET", "/token")

    def refresh(self, rejected_token: str | None = None) -> str:
        """A newer token, for after the API rejected one with 401.

        Pass the rejected token: the sidecar then fetches a new one only if it
        is still the one it serves (only its SHA-256 is sent).
        """
        return self._call("POST", "/token/refresh", _refresh_body(rejected_token))

    async def atoken(self) -> str:
        return await self._acall("GET", "/token")

    async def arefresh(self, rejected_token: str | None = None) -> str:
        return await self._acall("POST", "/token/refresh", _refresh_body(rejected_token))

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None


class SidecarAuth(httpx.Auth):
    """httpx auth: a sidecar token on every request, one refresh-and-retry on 401.

    ``SidecarAuth()`` reads ``TOOLBRIDGE_TOKEN_SIDECAR_URL`` and ``TOOLBRIDGE_SIDECAR_SECRET``,
    and ``TOOLBRIDGE_TOKEN_SIDECAR_AUDIENCE`` when no ``audience`` is given.
    """

    def __init__(
        self,
        url: str | None = None,
        secret: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        audience: str | None = None,
        client: SidecarClient | None = None,
    ) -> None:
        if client is None:
            url = url or os.environ.get("TOOLBRIDGE_TOKEN_SIDECAR_URL")
            secret = secret or os.environ.get("TOOLBRIDGE_SIDECAR_SECRET")
            if not url or not secret:
                raise SidecarConfigError(
                    "SidecarAuth needs the sidecar URL and secret "
                    "(TOOLBRIDGE_TOKEN_SIDECAR_URL and TOOLBRIDGE_SIDECAR_SECRET)"
                )
            audience = audience or os.environ.get("TOOLBRIDGE_TOKEN_SIDECAR_AUDIENCE") or None
            client = SidecarClient(url, secret, timeout=timeout, audience=audience)
        self.client = client

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.client.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self.client.refresh(token)}"
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.client.atoken()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await self.client.arefresh(token)}"
            yield request


_clients: dict[tuple[str, str, str | None], SidecarClient] = {}
_clients_lock = threading.Lock()
_static_warned = False


def _shared_client(url: str, secret: str, audience: str | None) -> SidecarClient:
    with _clients_lock:
        client = _clients.get((url, secret, audience))
        if client is None:
            client = _clients[(url, secret, audience)] = SidecarClient(url, secret, audience=audience)
        return client


async def aclose_shared_clients() -> None:
    """Closes the connections ``get_auth_header`` keeps; call it when the server shuts down."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        await client.aclose()
        client.close()


def _warn_static_once() -> None:
    global _static_warned
    if not _static_warned:
        _static_warned = True
        log.warning(
            "TOOLBRIDGE_JWT_TOKEN is deprecated: using a static token that is never refreshed; "
            "set TOOLBRIDGE_TOKEN_SIDECAR_URL and TOOLBRIDGE_SIDECAR_SECRET"
        )


async def get_auth_header(
    incoming_authorization: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The ``Authorization`` header for a ToolBridge API call, in the MCP server's order.

    1. The sidecar, when ``TOOLBRIDGE_TOKEN_SIDECAR_URL`` is set (with ``TOOLBRIDGE_SIDECAR_SECRET``,
       and ``TOOLBRIDGE_TOKEN_SIDECAR_AUDIENCE`` to ask for one of its other audiences).
       If it is unreachable or answers 503, this raises -- unless a static token is
       configured, which is then used with a warning. A 401 (wrong secret) always raises.
    2. The deprecated static ``TOOLBRIDGE_JWT_TOKEN``, with a deprecation warning logged once.
    3. ``incoming_authorization``: the per-user header of the incoming MCP request.

    Never returns an empty header: with none of the three it raises ``NoCredentialsError``.
    """
    env = os.environ if env is None else env
    url = env.get("TOOLBRIDGE_TOKEN_SIDECAR_URL")
    static = env.get("TOOLBRIDGE_JWT_TOKEN")
    if url:
        secret = env.get("TOOLBRIDGE_SIDECAR_SECRET")
        if not secret:
            raise SidecarConfigError(
                "TOOLBRIDGE_TOKEN_SIDECAR_URL is set but TOOLBRIDGE_SIDECAR_SECRET is not"
            )
        try:
            client = _shared_client(url, secret, env.get("TOOLBRIDGE_TOKEN_SIDECAR_AUDIENCE") or None)
            return {"Authorization": f"Bearer {await client.atoken()}"}
        except (SidecarUnreachableError, SidecarUnavailableError) as err:
            if not static:
                raise
            log.warning("%s; falling back to the deprecated static TOOLBRIDGE_JWT_TOKEN", err)
    if static:
        _warn_static_once()
        return {"Authorization": f"Bearer {static}"}
    if incoming_authorization:
        return {"Authorization": incoming_authorization}
    raise NoCredentialsError(
        "no credentials for the ToolBridge API: set TOOLBRIDGE_TOKEN_SIDECAR_URL and "
        "TOOLBRIDGE_SIDECAR_SECRET, or pass the incoming request's Authorization header"
    )


def describe_auth_mode(env: Mapping[str, str] | None = None) -> str:
    """One line for the MCP server's start-up log: how ToolBridge API calls are authenticated.

    The same order as ``get_auth_header``; never contains a token or a secret::

        log.info("ToolBridge API auth: %s", describe_auth_mode())
    """
    env = os.environ if env is None else env
    url = env.get("TOOLBRIDGE_TOKEN_SIDECAR_URL")
    if url:
        audience = env.get("TOOLBRIDGE_TOKEN_SIDECAR_AUDIENCE")
        detail = f" for audience {audience}" if audience else ""
        secret = "" if env.get("TOOLBRIDGE_SIDECAR_SECRET") else " (TOOLBRIDGE_SIDECAR_SECRET is NOT set: calls will fail)"
        fallback = "; falls back to the deprecated static TOOLBRIDGE_JWT_TOKEN" if env.get("TOOLBRIDGE_JWT_TOKEN") else ""
        return f"auto-refresh via the token sidecar at {_without_credentials(url)}{detail}{secret}{fallback}"
    if env.get("TOOLBRIDGE_JWT_TOKEN"):
        return "static token (deprecated TOOLBRIDGE_JWT_TOKEN, never refreshed)"
    return "per-user (the incoming request's Authorization header)"


def _without_credentials(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"
