"""How the app is served: uvicorn on a socket bound here, so `--port 0` works and the log says which
port was bound. `autofix serve` and bench/ingest_load.py both serve through `run`, the same way.

uvicorn stops accepting on SIGTERM or SIGINT, lets requests in flight finish (up to
GRACEFUL_S), then runs the app's shutdown (the inbox writer commits what it was handed).
"""

from __future__ import annotations

import gc
import socket
import sys

import structlog
import uvicorn
from fastapi import FastAPI

log = structlog.get_logger(__name__)

GRACEFUL_S = 30
# The event loop shares the GIL with the inbox writer and the processor threads. Python hands the
# GIL over every 5 ms by default, so a request whose socket write or decompression released it could
# wait that long to get it back; 1 ms keeps the loop responsive at a small cost in switches.
SWITCH_INTERVAL_S = 0.001


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    log.info("server.listening", host=host, port=sock.getsockname()[1])
    return sock


def run(app: FastAPI, sock: socket.socket) -> bool:
    """Serve until signalled; False when the app failed to start (store or broker unreachable)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # Everything built so far (modules, the app, its routes and models: most of the heap) lives as
    # long as the process. Under load, objects of requests in flight (waiting for their inbox commit)
    # survive into the oldest generation and keep triggering full collections, each of which walked
    # that whole heap: 130 ms apiece, about a fifth of the envelope endpoint's CPU (bench/ingest_load.py).
    # Frozen, it is left out of every collection.
    gc.freeze()
    config = uvicorn.Config(app, log_config=None, access_log=False, server_header=False,
                            timeout_graceful_shutdown=GRACEFUL_S, lifespan="on", backlog=2048)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return bool(server.started)
