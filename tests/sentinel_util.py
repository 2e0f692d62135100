"""A real Redis Sentinel deployment for tests: a master, a replica and three sentinels, each a
server process (the embedded server's binary, in sentinel mode for the sentinels) on free ports;
and `AudioTap`, which reads a session's `audio:{sid}` from whichever server is the master."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import redis
import redis.sentinel

from shared.messages import AudioChunk, AudioStop, from_fields
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


class AudioTap:
    """`audio:{sid}` as the master holds it, read in a thread as the gateway writes it.

    Entries are kept by their `seq` (the session's frame count when each was written). When the
    master dies, entries the tap saw may not have reached the replica: the gateway writes them again
    with the same seq once the client resends from `received`. So after a lost connection the tap
    reads the new master's stream again from its start and keeps what that master holds (what the
    VAD trimmed there meanwhile was replicated, and so is what the tap saw). `audio` is the session's
    stored audio once the stop was seen: the entries 0 .. stop's seq - 1, in order."""

    def __init__(self, sentinels: SentinelSet, key: str) -> None:
        self.sentinels, self.key = sentinels, key
        self.chunks: dict[int, bytes] = {}
        self.stop_seq: int | None = None
        self.reconnects = 0
        self.error: BaseException | None = None
        self._quit = threading.Event()
        self.thread = threading.Thread(target=self._run, name="audio-tap", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            r, last = self.sentinels.client(), "0-0"
            while self.stop_seq is None and not self._quit.is_set():
                try:
                    got = r.xread({self.key: last}, block=500) or []
                except (redis.ConnectionError, redis.TimeoutError, redis.sentinel.MasterNotFoundError):
                    self.reconnects += 1
                    r.connection_pool.disconnect()
                    last = "0-0"  # the new master's stream, from its start
                    time.sleep(0.2)  # retrying a server that is failing over, not a synchronisation
                    continue
                for _, entries in got:
                    for entry_id, fields in entries:
                        last = entry_id
                        msg = from_fields(fields)
                        if isinstance(msg, AudioChunk):
                            self.chunks[msg.seq] = msg.pcm
                        elif isinstance(msg, AudioStop):
                            self.stop_seq = msg.seq
        except BaseException as e:  # reported by finish()
            self.error = e

    def finish(self, within: float) -> bytes:
        """The stored audio; fails if the tap did not see the stop, or missed an entry."""
        self.thread.join(within)
        self._quit.set()
        assert self.error is None, repr(self.error)
        assert self.stop_seq is not None, (
            f"the tap never saw the stop ({self.reconnects} reconnects, {len(self.chunks)} entries, {self.thread.is_alive()})"
        )
        missing = [n for n in range(self.stop_seq) if n not in self.chunks]
        assert not missing, f"the tap missed entries {missing[:10]} of {self.stop_seq}"
        return b"".join(self.chunks[n] for n in range(self.stop_seq))
