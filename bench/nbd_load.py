#!/usr/bin/python3
"""A libnbd load for bench/nbd_tls_bench.py: random 4 KiB writes (or reads) with QD requests in flight on one
connection, for SECONDS; prints the completed requests per second. fio's nbd engine has no TLS, so both sides of
the TLS comparison use this same client. Run it with the system python (python3-libnbd): /usr/bin/python3.

  nbd_load.py URI SECONDS [--qd 32] [--bs 4096] [--read]
"""
import argparse, random, time

import nbd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("uri")
    ap.add_argument("seconds", type=float)
    ap.add_argument("--qd", type=int, default=32)
    ap.add_argument("--bs", type=int, default=4096)
    ap.add_argument("--read", action="store_true")
    args = ap.parse_args()

    h = nbd.NBD()
    h.set_uri_allow_local_file(True)  # tls-certificates=DIR in the URI
    h.connect_uri(args.uri)
    blocks = h.get_size() // args.bs
    rnd = random.Random(1)
    buf = nbd.Buffer.from_bytearray(bytearray(rnd.randbytes(args.bs)))
    done = 0

    def completed(error):
        nonlocal done
        done += 1
        return 1  # retire the command: nothing else looks at it

    start = time.monotonic()
    end = start + args.seconds
    while time.monotonic() < end:
        while h.aio_in_flight() < args.qd:
            offset = rnd.randrange(blocks) * args.bs
            if args.read:
                h.aio_pread(buf, offset, completion=completed)
            else:
                h.aio_pwrite(buf, offset, completion=completed)
        h.poll(-1)
    while h.aio_in_flight() > 0:
        h.poll(-1)
    elapsed = time.monotonic() - start
    h.shutdown()
    print(f"{done / elapsed:.1f}")


if __name__ == "__main__":
    main()
