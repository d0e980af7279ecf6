#!/usr/bin/env python3
"""A local HTTP server for the fetch tests: python3's http.server on 127.0.0.1, a free port.

Serves the files under --root. Two path prefixes misbehave on purpose:
  /die-after-N/PATH  sends PATH's headers (its full Content-Length) and N bytes, then the whole
                     server process exits: a server dying mid-transfer.
  /slow/PATH         sends PATH 16 KiB at a time, 0.2 s apart: for interrupting a download.
Writes the port it got to --port-file once it listens. Exits by itself when the process that
started it is gone, and after --lifetime seconds in any case, so a crashed test leaves nothing.
"""
import argparse
import functools
import http.server
import os
import re
import threading
import time


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # quiet: the tests read their own output
        pass

    def do_GET(self):
        match = re.match(r"^/(die-after-(\d+)|slow)(/.*)$", self.path)
        if not match:
            return super().do_GET()
        path = self.translate_path(match.group(3))
        if not os.path.isfile(path):
            return self.send_error(404)
        with open(path, "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if match.group(2) is not None:
            self.wfile.write(data[: int(match.group(2))])
            self.wfile.flush()
            os._exit(0)
        try:
            for at in range(0, len(data), 16384):
                self.wfile.write(data[at : at + 16384])
                self.wfile.flush()
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as the interrupt test makes it


def watch(parent, lifetime):
    deadline = time.monotonic() + lifetime
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.2)
    os._exit(0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--lifetime", type=float, default=600)
    args = parser.parse_args()
    threading.Thread(target=watch, args=(os.getppid(), args.lifetime), daemon=True).start()
    handler = functools.partial(Handler, directory=args.root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    temp = args.port_file + ".tmp"
    with open(temp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(temp, args.port_file)  # the test sees the whole number or nothing
    server.serve_forever()


if __name__ == "__main__":
    main()
