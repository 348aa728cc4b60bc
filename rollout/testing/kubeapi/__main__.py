"""`python -m rollout.testing.kubeapi`: the emulator as a process, for the lab."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from rollout.testing.kubeapi.running import start_emulator


def main(argv: list[str] | None = None) -> int:
    """`python -m rollout.testing.kubeapi`: serve the emulator (and optionally the simulator) for the lab.

    Prints the URL on stdout, writes a kubeconfig when asked, and runs until SIGINT/SIGTERM.
    """
    parser = argparse.ArgumentParser(prog="python -m rollout.testing.kubeapi", description=main.__doc__)
    parser.add_argument("--port", type=int, default=None, help="listen on 127.0.0.1:PORT (default: random)")
    parser.add_argument("--kubeconfig", type=Path, default=None, help="write a kubeconfig for the emulator here")
    parser.add_argument("--crd-dir", type=Path, default=None, help="CRD directory (default: $ROLLOUT_CRD_DIR)")
    parser.add_argument(
        "--simulate",
        metavar="NAMESPACE",
        default=None,
        help="also run the Metal3/CAPI controller simulator in NAMESPACE (real time)",
    )
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with start_emulator(args.crd_dir, args.port) as running:
        if args.kubeconfig:
            running.write_kubeconfig(args.kubeconfig)
        sim = None
        if args.simulate:
            from rollout.testing.capi_sim import CapiSimulator

            sim = CapiSimulator(running.api_client(), args.simulate).start()
        print(running.url, flush=True)
        done.wait()
        if sim is not None:
            sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
