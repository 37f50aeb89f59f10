"""The framework ceiling: one trivial Litestar endpoint, served like the service.

    python bench/trivial_app.py --port 9001 --workers 2 [--server granian]

`GET /` answers a tiny JSON object. It is served with the same server settings as
`otpservice serve` (uvicorn with uvloop and httptools, or granian with uvloop and HTTP/1; no
access log, one process per worker), so its requests per second are the most any endpoint of
the service can reach on this machine under that server.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from litestar import Litestar, get


@get("/", sync_to_thread=False)
def hello() -> dict[str, bool]:
    return {"ok": True}


app = Litestar([hello], debug=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    args = parser.parse_args()
    if args.server == "granian":
        serve_granian(args.port, args.workers)
    else:
        serve_uvicorn(args.port, args.workers)


def serve_uvicorn(port: int, workers: int) -> None:
    import uvicorn  # noqa: PLC0415

    uvicorn.run(
        "trivial_app:app" if workers > 1 else app,
        app_dir=str(Path(__file__).parent),
        host="127.0.0.1",
        port=port,
        workers=workers if workers > 1 else None,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )


def serve_granian(port: int, workers: int) -> None:
    """As `otpservice serve` with OTP_SERVER=granian (otpservice/__main__.py)."""
    from granian.constants import HTTPModes, Interfaces, Loops  # noqa: PLC0415
    from granian.log import LogLevels  # noqa: PLC0415
    from granian.server import Server  # noqa: PLC0415

    Server(
        "trivial_app:app",
        working_dir=Path(__file__).parent,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        log_level=LogLevels.warning,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()
