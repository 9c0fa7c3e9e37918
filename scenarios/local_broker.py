"""LocalBroker: `kbench broker` started as a subprocess on a free loopback port, and stopped.

Scenarios reach the engine through this and the Kafka protocol only, as any user would.
"""

import os
import signal
import subprocess
import sys


class LocalBroker:
    def __init__(
        self, data_dir: str, settings: dict[str, str] | None = None, log_path: str | None = None
    ):
        self.data_dir = data_dir
        self.settings = dict(settings or {})
        self.log_path = log_path or os.path.join(
            os.path.dirname(data_dir.rstrip("/")), "broker.log"
        )
        self.process: subprocess.Popen | None = None
        self.bootstrap = ""

    @property
    def port(self) -> int:
        return int(self.bootstrap.rsplit(":", 1)[1])

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the broker has not been started")
        return self.process.pid

    def start(self, port: int = 0) -> "LocalBroker":
        args = [sys.executable, "-m", "scenarios.cli", "broker", "--data-dir", self.data_dir]
        args += ["--listen", f"127.0.0.1:{port}"]
        for key, value in self.settings.items():
            args += ["--set", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.process.stdout is not None  # stdout=PIPE
        line = self.process.stdout.readline()
        if not line.startswith("kbench broker listening on "):
            self.process.wait(timeout=10)
            raise RuntimeError(f"the broker did not start; see {self.log_path}")
        self.bootstrap = line.rsplit(" ", 1)[1].strip()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop it (clean shutdown on SIGTERM) and return its exit status."""
        if self.process is None:
            return 0
        assert self.process.stdout is not None  # stdout=PIPE
        if self.process.stdout.closed:
            return self.process.returncode
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process.stdout.close()
        return code

    def restart(self) -> "LocalBroker":
        port = self.port
        self.stop()
        return self.start(port)

    def __enter__(self) -> "LocalBroker":
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()
