#!/usr/bin/env python3
"""Comparison server for tests/bench/smtp-bench.sh: what a site might run instead of faxgate.

An aiosmtpd server on 127.0.0.1 that writes every message to its own file in SPOOLDIR and, in
`fsync` mode, fsyncs it before answering 250 (so its 250 means the same as faxgate's: on disk).
usage: aiosmtpd_fsync.py PORT SPOOLDIR fsync|nofsync LIFETIME_SECONDS
It stops by itself after LIFETIME_SECONDS so a broken benchmark run never leaves it behind.
Needs the Debian package python3-aiosmtpd (or `pip install aiosmtpd`)."""
import asyncio
import itertools
import logging
import os
import sys

from aiosmtpd.smtp import SMTP


class FileStore:
    def __init__(self, directory, durable):
        self.directory = directory
        self.durable = durable
        self.counter = itertools.count()

    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(self.directory, "%d-%d.eml" % (os.getpid(), next(self.counter)))
        data = envelope.original_content or envelope.content
        # Plain blocking writes on the event loop: the straightforward way to write this.
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        return "250 2.0.0 Ok: stored"


async def serve(port, store, lifetime):
    loop = asyncio.get_running_loop()
    # A fixed hostname: otherwise aiosmtpd resolves the FQDN on every connection.
    server = await loop.create_server(
        lambda: SMTP(store, hostname="fax-gw.test"), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await asyncio.sleep(lifetime)


def main():
    if len(sys.argv) != 5 or sys.argv[3] not in ("fsync", "nofsync"):
        sys.exit(__doc__)
    port, directory, mode, lifetime = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
    os.makedirs(directory, exist_ok=True)
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    asyncio.run(serve(port, FileStore(directory, mode == "fsync"), lifetime))


if __name__ == "__main__":
    main()
