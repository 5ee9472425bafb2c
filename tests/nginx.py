"""A real nginx (Debian's package) in front of a test server, configured the way the test needs."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUFFERING = """
      proxy_buffering on;
      proxy_ignore_headers X-Accel-Buffering;  # buffers whatever the application asks for
      gzip on;
      gzip_proxied any;
      gzip_types text/event-stream application/json;  # and compresses the stream: events wait in the deflater
"""
STREAMING = """
      proxy_buffering off;
"""


@contextmanager
def nginx_in_front(upstream_port: int | list[int], workdir: Path, location_extra: str) -> Iterator[int]:
    """Run nginx on a free loopback port proxying to ``upstream_port`` (several: round robin, a new
    connection per request, no stickiness); yields its port."""
    ports = upstream_port if isinstance(upstream_port, list) else [upstream_port]
    servers = "".join(f"    server 127.0.0.1:{p};\n" for p in ports)
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(binary).exists(), "nginx is not installed: run ./run test (it installs nginx-light)"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
user root;
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  upstream mcp {{
{servers}  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://mcp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_read_timeout 300s;
      {location_extra}
    }}
  }}
}}
""")
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(workdir)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {proc.stderr.read() if proc.stderr else ''}") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
