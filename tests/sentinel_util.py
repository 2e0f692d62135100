"""A real Redis Sentinel deployment for tests: a master, a replica and three sentinels, each a
server process (the embedded server's binary, in sentinel mode for the sentinels) on free ports."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import redis
import redis.sentinel

from shared.redis_server import find_server, start_redis
from tests.faults_util import wait_for
from tests.util import free_port

MASTER_NAME = "classrec"


class SentinelSet:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.binary = find_server().path
        self.master_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def hosts(self) -> str:
        """REDIS_SENTINELS for the services."""
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def start(self) -> None:
        self.procs["master"] = start_redis(self.master_port, self.dir / "master")
        self.procs["replica"] = start_redis(self.replica_port, self.dir / "replica")
        replica = redis.Redis(port=self.replica_port)
        replica.replicaof("127.0.0.1", self.master_port)
        wait_for(
            lambda: replica.info("replication").get("master_link_status") == "up", 30, "the replica to sync"
        )
        replica.close()
        for n, port in enumerate(self.sentinel_ports):
            conf = self.dir / f"sentinel-{n}.conf"  # a sentinel rewrites its config: a file of its own
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 5000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            log = (self.dir / f"sentinel-{n}.log").open("w")
            self.procs[f"sentinel-{n}"] = subprocess.Popen(
                [self.binary, str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(lambda: self.master() == self.master_port, 30, "the sentinels to see the master")
        wait_for(lambda: self._replicas_known(), 30, "the sentinels to see the replica")

    def sentinel(self) -> redis.sentinel.Sentinel:
        return redis.sentinel.Sentinel(
            [("127.0.0.1", p) for p in self.sentinel_ports], sentinel_kwargs={"socket_timeout": 1}
        )

    def master(self) -> int | None:
        """The master's port, as the sentinels see it now."""
        try:
            return int(self.sentinel().discover_master(MASTER_NAME)[1])
        except (redis.RedisError, OSError):
            return None

    def _replicas_known(self) -> bool:
        try:
            return bool(self.sentinel().discover_slaves(MASTER_NAME))
        except (redis.RedisError, OSError):
            return False

    def client(self) -> redis.Redis:
        """A blocking client that follows the master."""
        return self.sentinel().master_for(MASTER_NAME, socket_timeout=5, socket_connect_timeout=1)

    def kill_master(self) -> None:
        p = self.procs["master"]
        p.send_signal(signal.SIGKILL)
        p.wait(10)

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
