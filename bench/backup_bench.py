#!/usr/bin/python3
# Incremental backup traffic (issue 16, docs/BACKUP.md): how many bytes scripts/cloudfs-backup moves for an
# incremental, over NBD and over the HTTP changes stream, against the changed bytes `cloudfs diff` reports. One node
# (started and stopped here), one volume: written whole (V1), a full backup of VOL@V1 (copied for the second form),
# then COUNT writes of WRITE bytes at random aligned offsets (V2), then the incremental of VOL@V2 since V1 each way
# through a counting TCP relay: every byte both ways on the wire (NBD: headers, BLOCK_STATUS replies, data; HTTP: the
# request, the response's headers, chunked framing and the stream's own framing and data). Prints one line per form.
#
#   bench/backup_bench.py [--listen 127.0.42.6] [--size 1G] [--write 4096] [--count 16384] [--device /tmp/bb.log]
import argparse, json, os, random, shutil, socket, subprocess, sys, threading, time, urllib.request

try:
    import nbd
except ImportError:
    nbd = None  # said after the arguments are read: --help needs no libnbd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLOUDFS = os.path.join(ROOT, "cloudfs")
BACKUP = os.path.join(ROOT, "scripts", "cloudfs-backup")


def size_of(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def cli(listen, *args):
    return subprocess.run([CLOUDFS, *args, "--contact", listen], check=True, capture_output=True, text=True).stdout.strip()


class Relay:
    """A TCP relay on an ephemeral port of LISTEN to LISTEN:PORT that counts the bytes it carries (and those it
    carries back from the server, `answered`)."""

    def __init__(self, listen, port):
        self.bytes = 0
        self.answered = 0
        self.lock = threading.Lock()
        self.server = socket.socket()
        self.server.bind((listen, 0))
        self.server.listen()
        self.port = self.server.getsockname()[1]
        self.target = (listen, port)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.server.accept()
            upstream = socket.create_connection(self.target)
            for a, b, back in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self.pump, args=(a, b, back), daemon=True).start()

    def pump(self, a, b, back):
        try:
            while data := a.recv(1 << 20):
                with self.lock:
                    self.bytes += len(data)
                    if back:
                        self.answered += len(data)
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try: s.shutdown(socket.SHUT_RDWR)
                except OSError: pass


def main():
    p = argparse.ArgumentParser(description="Incremental backup traffic (issue 16, docs/BACKUP.md): the bytes scripts/cloudfs-backup "
                                "moves for an incremental over NBD and over the HTTP changes stream, against the changed bytes "
                                "`cloudfs diff` reports. One node, started and stopped here; prints one line per form.")
    p.add_argument("--listen", default="127.0.42.6")
    p.add_argument("--size", default="1G")
    p.add_argument("--write", default="4096")
    p.add_argument("--count", type=int, default=16384)
    p.add_argument("--device", default="/tmp/cloudfs-backup-bench.log")
    a = p.parse_args()
    if nbd is None:
        sys.exit(f"backup_bench.py: libnbd's Python binding is missing for {sys.executable} (apt-get install python3-libnbd, "
                 "which serves Debian's /usr/bin/python3: run it as bench/backup_bench.py or /usr/bin/python3 bench/backup_bench.py)")
    size, write = size_of(a.size), size_of(a.write)
    if os.path.exists(a.device): os.remove(a.device)
    node = subprocess.Popen([CLOUDFS, "node", "--listen", a.listen, "--device", a.device, "--size", str(4 * size)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if urllib.request.urlopen(f"http://{a.listen}:8090/ready", timeout=5).status == 200: break
            except OSError:
                pass
            if time.monotonic() > deadline or node.poll() is not None: sys.exit("the node did not get ready")
            time.sleep(0.5)
        vol = cli(a.listen, "newdisk", "1", "--size", str(size))
        h = nbd.NBD()
        h.connect_uri(f"nbd://{a.listen}/{vol}")
        chunk = os.urandom(4 << 20)
        for off in range(0, size, len(chunk)):
            h.pwrite(chunk[: min(len(chunk), size - off)], off)
        h.flush()
        v1 = cli(a.listen, "info", vol)
        image = a.device + ".img"
        subprocess.run([BACKUP, "full", f"nbd://{a.listen}/{vol}@{v1}", image], check=True, capture_output=True)
        http_image = image + ".http"
        shutil.copyfile(image, http_image)
        rng = random.Random(16)
        data = os.urandom(write)
        for _ in range(a.count):
            h.pwrite(data, rng.randrange(size // write) * write)
        h.flush()
        h.shutdown()
        v2 = cli(a.listen, "info", vol)
        changed = json.loads(cli(a.listen, "diff", vol, v1, v2, "--json"))
        for form, port, img in (("nbd", 10809, image), ("http", 8090, http_image)):
            relay = Relay(a.listen, port)
            source = f"nbd://{a.listen}:{relay.port}/{vol}@{v2}" if form == "nbd" else f"http://{a.listen}:{relay.port}/{vol}@{v2}"
            start = time.monotonic()
            out = subprocess.run([BACKUP, "incremental", source, v1, img], check=True, capture_output=True, text=True).stdout.strip()
            took = time.monotonic() - start
            time.sleep(0.2)  # the relay's last bytes
            check = subprocess.run(["qemu-img", "compare", "-q", "-f", "raw", "-F", "raw", img, f"nbd://{a.listen}/{vol}@{v2}"])
            print(f"{form}: size {size} writes {a.count}x{write}: changed {changed['bytes']} bytes in {len(changed['ranges'])} ranges; "
                  f"incremental moved {relay.bytes} bytes on the wire = {relay.bytes / changed['bytes']:.3f}x the changed bytes "
                  f"({relay.answered} from the server = {relay.answered / changed['bytes']:.3f}x), {took:.2f} s; "
                  f"image {'identical to' if check.returncode == 0 else 'DIFFERS from'} V2 ({out})")
            os.remove(img)
    finally:
        node.terminate()
        node.wait(timeout=60)
        if os.path.exists(a.device): os.remove(a.device)


if __name__ == "__main__":
    main()
