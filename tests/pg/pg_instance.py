#!/usr/bin/env python3
"""A throwaway PostgreSQL server for tests: the one helper every test that needs a database uses.

initdb into a temporary folder as an unprivileged user (the `postgres` system user when we run as
root: PostgreSQL refuses to run as root), a free port, the Unix socket in that folder and no TCP
listener, fsync on (the durability tests mean it), started with pg_ctl, one database created.
Stopped (`pg_ctl stop -m fast`) and the folder removed at the end.

As a module:
    with PgInstance() as pg:
        url = pg.url          # postgresql://postgres@/backcheck?host=SOCKETDIR&port=PORT
        pg.restart()          # pg_ctl restart -m fast
        pg.stop_server(); pg.start_server()

As a command line:
    pg_instance.py start [DIR]      starts one (in DIR, else a new temporary folder); prints the URL,
                                    then the folder on a second line
    pg_instance.py stop DIR         stops it and removes DIR
    pg_instance.py halt DIR         pg_ctl stop -m fast, keeping the data (a database outage)
    pg_instance.py resume DIR       starts a halted one again
    pg_instance.py restart DIR      pg_ctl restart -m fast
    pg_instance.py run -- CMD...    starts one, runs CMD with BACKCHECK_TEST_DATABASE_URL,
                                    BACKCHECK_TEST_PG_DIR and BACKCHECK_TEST_PG_SCRIPT set, stops it,
                                    exits with CMD's status
Python 3 standard library only.
"""

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

DATABASE = "backcheck"
STATE_FILE = "instance.json"


def find_bin_dir():
    """The newest /usr/lib/postgresql/*/bin holding initdb (Debian's layout), else $PATH."""
    candidates = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        if os.path.exists(os.path.join(d, "initdb")):
            try:
                candidates.append((int(d.split("/")[-2]), d))
            except ValueError:
                pass
    if candidates:
        return max(candidates)[1]
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise RuntimeError("no PostgreSQL server binaries (initdb) found: install Debian's postgresql package "
                       "(scripts/setup --for-tests)")


def free_port():
    # The port only names the socket file (no TCP listener), but a free TCP port keeps it unique
    # among servers that do listen.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgInstance:
    def __init__(self, directory=None):
        self.directory = directory
        self.bin = find_bin_dir()
        self.port = None
        self._owned = directory is None

    # --- paths and the user the server runs as -------------------------------------------------
    @property
    def data(self):
        return os.path.join(self.directory, "data")

    @property
    def log(self):
        return os.path.join(self.directory, "server.log")

    @property
    def url(self):
        return f"postgresql://postgres@/{DATABASE}?host={self.directory}&port={self.port}"

    def _as_server_user(self, argv):
        # PostgreSQL will not run as root; as root we run it as the `postgres` system user.
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"] + argv
        return argv

    def _run(self, argv, check=True):
        result = subprocess.run(self._as_server_user(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{self._log_tail()}")
        return result

    def _log_tail(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return "\n--- server log ---\n" + "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def _pg_ctl(self, *args):
        return self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "60", *args])

    # --- life cycle ------------------------------------------------------------------------------
    def start(self):
        if self.directory is None:
            self.directory = tempfile.mkdtemp(prefix="backcheck-pg-")
        os.makedirs(self.directory, exist_ok=True)
        os.chmod(self.directory, 0o700)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self.port = free_port()
        try:
            self._run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres", "--auth=trust",
                       "-E", "UTF8", "--locale=C", "--no-sync"])
            with open(os.path.join(self.data, "postgresql.conf"), "a", encoding="utf-8") as conf:
                conf.write(f"\n# tests/pg/pg_instance.py\nport = {self.port}\nlisten_addresses = ''\n"
                           f"unix_socket_directories = '{self.directory}'\nfsync = on\nsynchronous_commit = on\n"
                           "max_connections = 60\nshared_buffers = 32MB\n")
            self._pg_ctl("start")
            self._run([os.path.join(self.bin, "createdb"), "-h", self.directory, "-p", str(self.port), "-U",
                       "postgres", DATABASE])
        except BaseException:
            self.stop()
            raise
        self._save()
        return self

    def _save(self):
        path = os.path.join(self.directory, STATE_FILE)
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"port": self.port}, f)

    @classmethod
    def attach(cls, directory):
        """The instance a `start` command left in `directory`."""
        pg = cls(os.path.abspath(directory))
        with open(os.path.join(pg.directory, STATE_FILE), encoding="utf-8") as f:
            pg.port = json.load(f)["port"]
        return pg

    def stop_server(self):
        """A database outage: the server stops, the data stays."""
        self._pg_ctl("stop", "-m", "fast")

    def start_server(self):
        self._pg_ctl("start")

    def restart(self):
        self._pg_ctl("restart", "-m", "fast")

    def stop(self):
        """Stops the server (if it runs) and removes the folder."""
        if self.directory is None:
            return
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-w", "-t", "60", "stop", "-m", "fast"],
                      check=False)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    command = argv[1]
    try:
        if command == "start":
            pg = PgInstance(os.path.abspath(argv[2]) if len(argv) > 2 else None).start()
            print(pg.url)
            print(pg.directory)
            return 0
        if command in ("stop", "halt", "resume", "restart"):
            if len(argv) != 3:
                print(f"usage: {argv[0]} {command} DIR", file=sys.stderr)
                return 2
            pg = PgInstance.attach(argv[2])
            {"stop": pg.stop, "halt": pg.stop_server, "resume": pg.start_server, "restart": pg.restart}[command]()
            return 0
        if command == "run":
            rest = argv[2:]
            if rest[:1] == ["--"]:
                rest = rest[1:]
            if not rest:
                print(f"usage: {argv[0]} run -- CMD...", file=sys.stderr)
                return 2
            with PgInstance() as pg:
                env = dict(os.environ, BACKCHECK_TEST_DATABASE_URL=pg.url, BACKCHECK_TEST_PG_DIR=pg.directory,
                           BACKCHECK_TEST_PG_SCRIPT=os.path.abspath(__file__))
                return subprocess.call(rest, env=env)
    except RuntimeError as e:
        print(f"pg_instance: {e}", file=sys.stderr)
        return 1
    print(f"pg_instance: unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
