"""The Dask options ``matrix`` and ``bisect --workers`` share: defined once here."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_cluster_options(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_argument_group("Dask cluster")
    g.add_argument("--scheduler", metavar="tcp://HOST:PORT|tls://HOST:PORT",
                   help=f"{what} on this Dask distributed scheduler (the dask extra); a plain "
                   "tcp:// scheduler lets anyone who reaches it run code as the workers' user")
    g.add_argument("--tls-dir", type=Path, metavar="DIR",
                   help="with a tls:// scheduler: DIR/ca.pem, DIR/cert.pem, DIR/key.pem (the "
                   "client's certificate and key, signed by the cluster's CA); default: "
                   "dask's own distributed.comm.tls configuration")
