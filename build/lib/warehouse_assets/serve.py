"""`make serve`: the Dagster UI and its GraphQL API, every route behind a username and password.

dagster-webserver has no authentication of its own, so its ASGI app is wrapped in HTTP basic auth
checked before any route runs, the GraphQL websocket handshake included. The credentials come from
DAGSTER_UI_USER and DAGSTER_UI_PASSWORD; without them the server refuses to start unless told it
is local-only, and then it listens on 127.0.0.1 alone.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import ipaddress
import os
import secrets
import signal
import sys
from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from warehouse_assets.settings import REPO_ROOT

USER_VAR, PASSWORD_VAR, LOCAL_ONLY_VAR = "DAGSTER_UI_USER", "DAGSTER_UI_PASSWORD", "DAGSTER_UI_LOCAL_ONLY"
LOOPBACK = "127.0.0.1"


class BasicAuth:
    """ASGI middleware: an HTTP request or websocket handshake without the credentials gets 401."""

    def __init__(self, app: ASGIApp, user: str, password: str) -> None:
        self.app = app
        self.user, self.password = user.encode(), password.encode()

    def authorized(self, scope: Scope) -> bool:
        scheme, _, encoded = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Both comparisons always run, in constant time: timing tells nothing about either part.
        user_ok = secrets.compare_digest(user, self.user)
        password_ok = secrets.compare_digest(password, self.password)
        return bool(sep) and user_ok and password_ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.authorized(scope):
            await self.app(scope, receive, send)
            return
        denied = PlainTextResponse(
            "Authentication required.\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="Dagster", charset="UTF-8"'},
        )
        if scope["type"] == "http":
            await denied(scope, receive, send)
            return
        websocket = WebSocket(scope, receive, send)
        if "websocket.http.response" in scope.get("extensions", {}):
            await websocket.send_denial_response(denied)
        else:  # the server cannot send a 401 on a handshake: closing before accept makes it a 403
            await websocket.close(code=1008)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_plan(host: str | None, local_only: bool,
                env: Mapping[str, str]) -> tuple[str, tuple[str, str] | None]:
    """Where to listen and which credentials to require; SystemExit when that would be unsafe."""
    user, password = env.get(USER_VAR), env.get(PASSWORD_VAR)
    if bool(user) != bool(password):
        raise SystemExit(f"set both {USER_VAR} and {PASSWORD_VAR}, or neither")
    if local_only:
        host = host or LOOPBACK
        if not is_loopback(host):
            raise SystemExit(f"--local-only serves on loopback only, not on {host}")
    elif not user:
        raise SystemExit(
            f"refusing to serve the Dagster UI without a password: set {USER_VAR} and "
            f"{PASSWORD_VAR}, or pass --local-only ({LOCAL_ONLY_VAR}=1) to serve on {LOOPBACK} only"
        )
    return host or "0.0.0.0", (user, password) if user and password else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m warehouse_assets.serve", description=__doc__)
    parser.add_argument("--host", help=f"default 0.0.0.0, or {LOOPBACK} with --local-only")
    parser.add_argument("-p", "--port", type=int, default=3000)
    parser.add_argument("-w", "--workspace", default=str(REPO_ROOT / "workspace.yaml"))
    parser.add_argument(
        "--local-only", action="store_true", default=os.environ.get(LOCAL_ONLY_VAR) == "1",
        help=f"allow serving without credentials, on loopback only (or {LOCAL_ONLY_VAR}=1)",
    )
    args = parser.parse_args(argv)
    host, credentials = listen_plan(args.host, args.local_only, os.environ)

    import uvicorn
    from dagster._cli.utils import get_possibly_temporary_instance_for_cli
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster_webserver.app import create_app_from_workspace_process_context
    from dagster_webserver.version import __version__

    # uvicorn re-raises the signal it stopped on: as SystemExit, SIGTERM unwinds the blocks below,
    # which stop the code server process instead of leaving it orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with (
        get_possibly_temporary_instance_for_cli("warehouse_assets.serve") as instance,
        WorkspaceProcessContext(
            instance, WorkspaceFileTarget(paths=[args.workspace]), version=__version__
        ) as context,
    ):
        app: ASGIApp = create_app_from_workspace_process_context(context)
        if credentials:
            app = BasicAuth(app, *credentials)
        print(f"serving the Dagster UI on http://{host}:{args.port} "
              f"({'password required' if credentials else 'local only, no password'})", flush=True)
        uvicorn.run(app, host=host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
