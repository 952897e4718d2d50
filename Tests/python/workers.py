"""Starting the built workers for the client tests: `--local` on a free port, ready to serve."""
import re
import subprocess
import threading
import time
import urllib.request

SERVING = re.compile(r"Serving the .* on http://[^ ]*:(\d+)")


class Worker:
    """A worker process in `--local` mode; `log` collects its standard error."""

    def __init__(self, binary, env, args=()):
        self.log = []
        self.proc = subprocess.Popen([binary, "--local", "--port", "0", *args], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.base = f"http://127.0.0.1:{self._port(time.time() + 30)}"
        self._wait_ready(time.time() + 30)

    def _port(self, deadline):
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            match = SERVING.search(line)
            if match:
                # Keep draining the log so the worker never blocks on a full pipe.
                threading.Thread(target=lambda: [self.log.append(l) for l in self.proc.stderr], daemon=True).start()
                return int(match.group(1))
        self.proc.kill()
        raise RuntimeError("the worker never reported its port:\n" + "".join(self.log))

    def _wait_ready(self, deadline):
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/ping", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise RuntimeError("the worker did not become ready:\n" + "".join(self.log))
            time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def fake_upstream(binary, service):
    """`fake-upstream <service> --port 0` (context7, llm): yields its base URL, then stops it."""
    process = subprocess.Popen([binary, service, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r"listening on (\d+)", process.stdout.readline()).group(1))
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
