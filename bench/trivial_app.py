"""The framework ceiling: one trivial Litestar endpoint, served like the service.

    python bench/trivial_app.py --port 9001 --workers 2

`GET /` answers a tiny JSON object. It is served with the same server settings as
`otpservice serve` (uvicorn, uvloop, httptools, no access log, one process per worker), so its
requests per second are the most any endpoint of the service can reach on this machine.
"""

from __future__ import annotations

import argparse

from litestar import Litestar, get


@get("/", sync_to_thread=False)
def hello() -> dict[str, bool]:
    return {"ok": True}


app = Litestar([hello], debug=False)


def main() -> None:
    import uvicorn  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "trivial_app:app" if args.workers > 1 else app,
        app_dir=__file__.rsplit("/", 1)[0],
        host="127.0.0.1",
        port=args.port,
        workers=args.workers if args.workers > 1 else None,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
