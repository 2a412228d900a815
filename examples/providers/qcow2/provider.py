#!/usr/bin/env python3
"""drplan's reference provider plugin: machines made of qcow2 disk images, driven by qemu-img.

Copy this file to start a provider of your own: the protocol part (the first ~120 lines) is
the same for every platform; the rest is what "replicate", "fail over" and "drill" mean here.
Protocol: docs/provider-protocol.md. Check a plugin with:

    drplan provider test -- python3 examples/providers/qcow2/provider.py

The platform. A site is a directory (`path:` in the plan). A machine is a directory in it,
named by the machine's `id`, holding one `NAME.qcow2` per disk; nothing else is needed to
protect it. drplan keeps its own files beside the disks, all in that one directory so that the
relative backing-file names inside the images never break:

    DISK.qcow2             the copy's disk as the guest sees it: the live disk, or the
                           replica's head (the data synced so far)
    DISK@pN.qcow2          recovery point N at a replica: an image the head is layered on
    DISK@drill-NAME.qcow2  a drill's copy: a thin overlay on a point, deleted at cleanup
    copy.json              this copy's role (live / replica / stale), power, networks, points
    owner.json             the plan that manages the machine (claims)

Replication moves only the clusters that changed: an empty overlay on the source disk is
rebased (safe mode) onto the target's head, which leaves in it exactly the clusters where the
two differ; that delta is committed into the head, and freezing the head makes a point. A site
is reachable while its directory exists. Standard library only; needs qemu-img (qemu-utils).
"""

import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback

PROTOCOL = "1.0"
NAME = "qcow2"
VERSION = "1.0.0"
SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

SETTINGS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "qemu_img": {"type": "string", "description": "the qemu-img program (default: qemu-img on PATH)"},
        "verify": {
            "type": "string",
            "enum": ["on", "off"],
            "description": "on (default): compare the copies byte for byte before a lossless failover",
        },
    },
}

# ---------------------------------------------------------------------------------------------
# The protocol: JSON-RPC 2.0, one object per line. Requests run on threads (many may be in
# flight); stdout is written under a lock and carries nothing but protocol.
# ---------------------------------------------------------------------------------------------

_out = threading.Lock()


def send(message):
    line = json.dumps(message, separators=(",", ":"))
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(text):
    sys.stderr.write(f"qcow2: {text}\n")
    sys.stderr.flush()


class Fail(Exception):
    """A failed call: `kind` is one of the protocol's error kinds."""

    def __init__(self, kind, message, **data):
        super().__init__(message)
        self.kind, self.message, self.data = kind, message, data


class Cancelled(Exception):
    pass


class Call:
    """One request in flight: its id, whether drplan asked to cancel it, and its progress."""

    def __init__(self, id, operation=None):
        self.id, self.operation, self.cancel = id, operation, threading.Event()

    def check(self):
        if self.cancel.is_set():
            raise Cancelled()

    def progress(self, done, total, message):
        if self.operation:
            send({"jsonrpc": "2.0", "method": "$/progress",
                  "params": {"operation": self.operation, "bytes": done, "total_bytes": total, "message": message}})


def serve(provider):
    calls = {}
    for line in sys.stdin:
        try:
            message = json.loads(line)
        except ValueError as e:
            send({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": str(e)}})
            continue
        method, id, params = message.get("method"), message.get("id"), message.get("params")
        if method == "exit":
            break
        if method == "$/cancelRequest":
            call = calls.get(json.dumps((params or {}).get("id")))
            if call:
                call.cancel.set()
            continue
        if id is None:
            continue  # another notification: nothing to do
        operation = (params or {}).get("operation") if method == "execute" else None
        call = calls[json.dumps(id)] = Call(id, operation)
        threading.Thread(target=answer, args=(provider, calls, call, method, params), daemon=True).start()
    provider.close()


def answer(provider, calls, call, method, params):
    try:
        handler = provider.methods().get(method)
        if handler is None:
            error = {"code": -32601, "message": f"no method `{method}`"}
        else:
            send({"jsonrpc": "2.0", "id": call.id, "result": handler(params, call)})
            return
    except Cancelled:
        error = {"code": -32800, "message": "cancelled", "data": {"kind": "cancelled"}}
    except Fail as f:
        error = {"code": -32000, "message": f.message, "data": dict(f.data, kind=f.kind)}
    except Exception as e:  # a bug here is a failed call, never a dead plugin
        log(traceback.format_exc())
        error = {"code": -32000, "message": f"{type(e).__name__}: {e}", "data": {"kind": "failed"}}
    finally:
        calls.pop(json.dumps(call.id), None)
    send({"jsonrpc": "2.0", "id": call.id, "error": error})


# ---------------------------------------------------------------------------------------------
# qemu-img, and small helpers.
# ---------------------------------------------------------------------------------------------


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_iso(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


def ms(delta):
    return max(0, int(delta.total_seconds() * 1000))


def safe_name(what, name):
    if not SAFE.match(name or "") or "@" in name:
        raise Fail("setup", f"{what} `{name}` cannot name a file here",
                   hint="use letters, digits, `.`, `_` and `-` (no `/`, no `@`)")
    return name


def write_json(path, value):
    """Written whole or not at all: a crash leaves the old file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


class Qemu:
    def __init__(self, program="qemu-img"):
        self.program = program

    def run(self, *args, ok=(0,)):
        try:
            done = subprocess.run([self.program, *args], capture_output=True, text=True)
        except FileNotFoundError:
            raise Fail("setup", f"`{self.program}` was not found", hint="install qemu-utils, or set `qemu_img`")
        if done.returncode not in ok:
            raise Fail("failed", f"qemu-img {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done

    def info(self, image):
        return json.loads(self.run("info", "--output=json", image).stdout)

    def size(self, image):
        return self.info(image)["virtual-size"]

    def own_bytes(self, image):
        """Bytes of guest data this image itself holds (not its backing files)."""
        extents = json.loads(self.run("map", "--output=json", image).stdout)
        return sum(e["length"] for e in extents if e["depth"] == 0 and e.get("present", e["data"]))

    def overlay(self, image, backing):
        """An empty image layered on `backing` (named relative to it: both are in one folder)."""
        self.run("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", os.path.basename(backing), image)

    def same(self, a, b):
        return self.run("compare", "-q", a, b, ok=(0, 1)).returncode == 0


# ---------------------------------------------------------------------------------------------
# The platform: sites, machine copies, recovery points.
# ---------------------------------------------------------------------------------------------


class Copy:
    """A machine's copy at one site: a folder of disks and its copy.json."""

    def __init__(self, site, machine_dir):
        self.site, self.dir = site, machine_dir
        self.state = read_json(self.file("copy.json"))
        if self.state is None and self.disks():
            # Disks put here by hand: the machine, live and running, not protected yet.
            self.state = {"role": "live", "generation": 0, "power": "on", "nics": []}

    def file(self, name):
        return os.path.join(self.dir, name)

    def exists(self):
        return self.state is not None

    def disks(self):
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(n[:-6] for n in names if n.endswith(".qcow2") and "@" not in n and not n.startswith("."))

    def disk(self, name, suffix=""):
        return self.file(f"{name}{suffix}.qcow2")

    def save(self):
        os.makedirs(self.dir, exist_ok=True)
        write_json(self.file("copy.json"), self.state)

    def points(self):
        return self.state.get("points", [])

    def point(self, id):
        for p in self.points():
            if p["id"] == id:
                return p
        raise Fail("failed", f"recovery point {id} does not exist at `{self.site}`",
                   hint="inventory lists the points there are")

    def drills(self):
        names = os.listdir(self.dir) if os.path.isdir(self.dir) else []
        return sorted({n.split("@drill-", 1)[1][:-6] for n in names if "@drill-" in n and n.endswith(".qcow2")})


class Estate:
    def __init__(self):
        self.sites = {}  # name -> path
        self.machines = {}  # plan name -> folder name (the machine's id)
        self.keep_points = 6
        self.qemu = Qemu()
        self.verify = True
        self.locks = {}
        self.lock = threading.Lock()
        self.scratch = None  # the conformance kit's estate folder
        self.writes = 0

    # -- protocol methods ----------------------------------------------------------------------

    def methods(self):
        return {
            "initialize": self.initialize, "open": self.open, "inventory": self.inventory,
            "sites": self.site_states, "estimates": self.estimates, "execute": self.execute,
            "flush": lambda p, c: None, "shutdown": lambda p, c: None,
            "claims": self.claims, "claim": self.claim,
            "test/createEstate": self.test_create, "test/write": self.test_write,
            "test/setReachable": self.test_reachable, "test/content": self.test_content,
        }

    def initialize(self, params, call):
        if not any(v.split(".")[0] == PROTOCOL.split(".")[0] for v in params.get("protocol_versions", [])):
            raise Fail("setup", f"this plugin speaks protocol {PROTOCOL}")
        return {"protocol_version": PROTOCOL, "name": NAME, "version": VERSION,
                "capabilities": self.capabilities(), "settings_schema": SETTINGS_SCHEMA}

    def capabilities(self):
        both = {"forward": True, "back": True}
        return {"test_failover": both, "planned_failover": both, "unplanned_failover": both,
                "failback_delta": True, "failback_full": True, "alternate_location": True,
                "app_consistent_points": False, "change_recovery_point": True}

    def open(self, params, call):
        plan = params["plan"]
        for name, site in plan["sites"].items():
            if not site.get("path"):
                raise Fail("setup", f"site `{name}` has no `path`", hint="a qcow2 site is a directory: give `path:`")
            self.sites[name] = site["path"]
            settings = site.get("settings") or {}
            if "qemu_img" in settings:
                self.qemu = Qemu(settings["qemu_img"])
            self.verify = settings.get("verify", "on") != "off" and self.verify
        for m in plan["machines"]:
            self.machines[m["name"]] = safe_name("machine id", m.get("id") or m["name"])
        self.keep_points = max(1, plan.get("keep_points") or 6)
        return {"capabilities": self.capabilities()}

    def close(self):
        if self.scratch:
            for path in list(self.sites.values()):
                if os.path.isdir(path + ".dark"):
                    os.rename(path + ".dark", path)
            shutil.rmtree(self.scratch, ignore_errors=True)

    def site_states(self, params, call):
        return {name: self.site_state(name) for name in self.sites}

    def site_state(self, name):
        if os.path.isdir(self.sites[name]):
            return {"reachable": True}
        return {"reachable": False, "error": f"{self.sites[name]} is not there"}

    def estimates(self, params, call):
        out = {}
        for machine in params.get("machines") or list(self.machines):
            size = 0
            for _, copy in self.copies(machine):
                size = max(size, sum(self.qemu.size(copy.disk(d)) for d in copy.disks()))
            copy_ms = 100 + size // 400_000  # about 400 MB/s on a local disk
            out[machine] = {"enable-protection": copy_ms, "take-point": 200 + copy_ms // 10, "shutdown": 1000,
                            "start": 2000, "sync": 200 + copy_ms // 10, "failover": 300, "commit": copy_ms,
                            "change-point": 200, "revert": 300, "reprotect": copy_ms, "create-test-copy": 300,
                            "remove-test-copy": 200}
        return out

    # -- where things are ------------------------------------------------------------------------

    def reachable(self, site):
        if site not in self.sites:
            raise Fail("setup", f"site `{site}` is not one of this plan's sites")
        return os.path.isdir(self.sites[site])

    def need(self, *sites):
        for site in sites:
            if not self.reachable(site):
                raise Fail("unreachable", f"{self.sites[site]} cannot be reached", site=site)

    def folder(self, machine):
        if machine not in self.machines:
            raise Fail("not_found", f"`{machine}` is not a machine of this plan", machine=machine)
        return self.machines[machine]

    def copy(self, machine, site):
        return Copy(site, os.path.join(self.sites[site], self.folder(machine)))

    def machine_lock(self, machine):
        with self.lock:
            return self.locks.setdefault(machine, threading.Lock())

    def copies(self, machine):
        """The machine's copies at the sites that can be reached: (site, copy)."""
        for site in self.sites:
            if self.reachable(site):
                copy = self.copy(machine, site)
                if copy.exists():
                    yield site, copy

    def active(self, machine):
        """The site of the live copy: the newest live one, or the source a replica names when
        that source is dark."""
        best = None
        replica_from = None
        for site, copy in self.copies(machine):
            if copy.state["role"] == "live" and (best is None or copy.state["generation"] > best[1]):
                best = (site, copy.state["generation"])
            if copy.state["role"] == "replica" and not self.reachable(copy.state["from"]):
                replica_from = copy.state["from"]
        return best[0] if best else replica_from

    def live(self, machine, site):
        copy = self.copy(machine, site)
        if not copy.exists():
            raise Fail("not_found", f"`{machine}` has no copy at `{site}`", machine=machine, site=site)
        if self.active(machine) != site:
            raise Fail("failed", f"the live copy of `{machine}` is not at `{site}`",
                       hint="inventory shows where it runs")
        return copy

    # -- inventory -------------------------------------------------------------------------------

    def inventory(self, params, call):
        return {"taken_at": iso(now()), "sites": self.site_states(None, call),
                "machines": {m: self.machine_inventory(m) for m in self.machines}}

    def machine_inventory(self, machine):
        out = {"active_site": self.active(machine), "copies": {}, "replication": None, "points": [],
               "commit_pending": False, "test_copies": []}
        for site, copy in self.copies(machine):
            s = copy.state
            out["copies"][site] = {
                "power": s.get("power", "off"), "consistent": s.get("consistent", True), "nics": s.get("nics", []),
                "settings": {}, "disks": [{"name": d, "size_bytes": self.qemu.size(copy.disk(d))} for d in copy.disks()],
            }
            if s["role"] == "live" and site == out["active_site"] and s.get("commit_pending"):
                out["commit_pending"] = True
                out["failed_over_at"] = s.get("failed_over_at")
                out["points"] = self.point_list(copy)
            if s["role"] == "replica" and s.get("from") == out["active_site"] and s.get("protected"):
                health = "healthy"
                if not s.get("consistent", True):
                    health = "inconsistent"
                elif not self.reachable(s["from"]):
                    health = "degraded"
                newest = copy.points()[-1]["time"] if copy.points() else None
                out["replication"] = {"from": s["from"], "to": site, "health": health}
                if newest:
                    out["replication"]["lag"] = ms(now() - parse_iso(newest))
                out["points"] = self.point_list(copy)
            for drill in copy.drills():
                info = s.get("drills", {}).get(drill, {})
                out["test_copies"].append({"site": site, "drill": drill, "power": info.get("power", "on")})
        return out

    def point_list(self, copy):
        return [{"id": p["id"], "time": p["time"], "consistency": "crash", "processed": True}
                for p in copy.points()]

    # -- moving data -----------------------------------------------------------------------------

    def transfer(self, source, target, full, call):
        """Bring the target's disks to the source's data. The target is marked inconsistent
        before the first byte and consistent after the last: an interrupted transfer leaves it
        inconsistent and the next one redoes it. Returns the bytes of the clusters moved."""
        disks = source.disks()
        total = sum(self.qemu.size(source.disk(d)) for d in disks)
        target.state["consistent"] = False
        target.save()
        moved = scanned = 0
        for disk in disks:
            call.check()
            head = target.disk(disk)
            if full or not os.path.exists(head):
                moved += self.copy_whole(source.disk(disk), head)
            else:
                moved += self.copy_changes(source.disk(disk), head)
            scanned += self.qemu.size(source.disk(disk))
            call.progress(scanned, total, f"disk {disk} done, {moved} bytes of clusters moved so far")
        for gone in set(target.disks()) - set(disks):
            os.remove(target.disk(gone))
        call.check()
        target.state["consistent"] = True
        # What a lossless failover needs to know when the source has gone dark since.
        target.state["last_sync"] = {"final": source.state.get("power") == "off", "time": iso(now())}
        target.save()
        return moved

    def copy_whole(self, source, head):
        """A full copy (guest data only: unallocated clusters stay unallocated)."""
        tmp = head + ".incoming"
        self.qemu.run("convert", "-q", "-O", "qcow2", source, tmp)
        moved = self.qemu.own_bytes(tmp)
        os.replace(tmp, head)
        return moved

    def copy_changes(self, source, head):
        """Only the clusters where source and head differ: an overlay on the source, rebased
        onto the head, holds exactly those; committed into the head, they make it equal."""
        size = self.qemu.size(source)
        if self.qemu.size(head) < size:
            self.qemu.run("resize", "-q", head, str(size))
        elif self.qemu.size(head) > size:
            return self.copy_whole(source, head)
        delta = head[:-6] + "@delta.qcow2"
        if os.path.exists(delta):
            os.remove(delta)  # left by an interrupted transfer: recomputed below
        self.qemu.run("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", os.path.abspath(source), delta)
        self.qemu.run("rebase", "-q", "-f", "qcow2", "-F", "qcow2", "-b", os.path.basename(head), delta)
        moved = self.qemu.own_bytes(delta)
        if moved:
            self.qemu.run("commit", "-q", "-f", "qcow2", delta)
        os.remove(delta)
        return moved

    def freeze(self, copy, call):
        """The head becomes recovery point N and a new empty head is layered on it."""
        id = max([p["id"] for p in copy.points()], default=0) + 1
        for disk in copy.disks():
            frozen = copy.disk(disk, f"@p{id}")
            os.replace(copy.disk(disk), frozen)
            self.qemu.overlay(copy.disk(disk), frozen)
        copy.state.setdefault("points", []).append({"id": id, "time": iso(now())})
        copy.save()
        self.retain(copy)
        return id

    def retain(self, copy):
        """Keep `keep_points`: the oldest point is merged into the next (never one a drill uses)."""
        used = {d.get("point") for d in (copy.state.get("drills") or {}).values()}
        while len(copy.points()) > self.keep_points and copy.points()[0]["id"] not in used:
            oldest, nxt = copy.points()[0]["id"], copy.points()[1]["id"]
            for disk in copy.disks():
                # Safe rebase onto nothing: copies into the next point what it read from the oldest.
                self.qemu.run("rebase", "-q", "-f", "qcow2", "-b", "", copy.disk(disk, f"@p{nxt}"))
                os.remove(copy.disk(disk, f"@p{oldest}"))
            copy.state["points"] = copy.points()[1:]
            copy.save()

    def flatten(self, copy):
        """Each disk standalone (its backing chain copied in), then no points kept."""
        for disk in copy.disks():
            tmp = copy.disk(disk, "@flat")
            self.qemu.run("convert", "-q", "-O", "qcow2", copy.disk(disk), tmp)
            os.replace(tmp, copy.disk(disk))
        drills = copy.state.get("drills") or {}
        keep = {f"@p{d.get('point')}" for d in drills.values()}
        for name in os.listdir(copy.dir):
            point = re.match(r"^.*(@p\d+)\.qcow2$", name)
            if point and point.group(1) not in keep:
                os.remove(os.path.join(copy.dir, name))
        copy.state["points"] = [p for p in copy.points() if f"@p{p['id']}" in keep]

    def head_on(self, copy, point):
        """The head becomes an empty overlay on `point` (None: on the newest)."""
        if point is None:
            if not copy.points():
                return
            point = copy.points()[-1]["id"]
        for disk in copy.disks():
            os.remove(copy.disk(disk))
            self.qemu.overlay(copy.disk(disk), copy.disk(disk, f"@p{point}"))

    # -- operations ------------------------------------------------------------------------------

    def execute(self, params, call):
        op = params["op"]
        kind = op["op"]
        handler = getattr(self, "op_" + kind.replace("-", "_"), None)
        if handler is None:
            raise Fail("failed", f"operation `{kind}` is not known to this plugin")
        machine = op["machine"]
        self.folder(machine)
        with self.machine_lock(machine):
            call.check()
            result = handler(call, **{k: v for k, v in op.items() if k != "op"})
        log(f"{params.get('operation')}: {kind} {machine}: {result['summary']}")
        return result

    def op_enable_protection(self, call, machine, **op):
        src, dst = op["from"], op["to"]
        self.need(src, dst)
        source = self.live(machine, src)
        target = self.copy(machine, dst)
        if self.replicates(target, src):
            return done(f"{machine} already replicates {src} → {dst}")
        if target.exists() and target.state["role"] == "live" and self.active(machine) == dst:
            raise Fail("failed", f"`{machine}` is live at `{dst}`; it cannot be a replica there")
        shutil.rmtree(target.dir, ignore_errors=True)
        target.state = {"role": "replica", "from": src, "protected": True, "points": [], "power": "off",
                        "nics": [], "source_generation": source.state["generation"]}
        moved, point = self.protect(source, target, True, call)
        return outcome(f"replicated {moved} bytes {src} → {dst}; point {point}", bytes_transferred=moved, point=point)

    def replicates(self, target, source):
        """The copy is a consistent replica of `source` under protection."""
        return target.exists() and target.state.get("protected") and target.state.get("from") == source \
            and target.state.get("consistent", True)

    def protect(self, source, target, full, call):
        """Replicate into the target (set up as a replica) and record its first point: (bytes, point)."""
        moved = self.transfer(source, target, full, call)
        point = self.freeze(target, call)
        source.state["replicating_to"] = target.site
        source.save()
        return moved, point

    def op_take_point(self, call, machine, **op):
        src, dst = op["from"], op["to"]
        self.need(src, dst)
        source = self.live(machine, src)
        target = self.replica(machine, dst, src)
        moved = self.transfer(source, target, False, call)
        point = self.freeze(target, call)
        return outcome(f"point {point}: {moved} bytes of changed clusters", bytes_transferred=moved, point=point)

    def replica(self, machine, site, source):
        copy = self.copy(machine, site)
        if not copy.exists() or copy.state["role"] != "replica" or copy.state.get("from") != source:
            raise Fail("failed", f"`{machine}` has no replica from `{source}` at `{site}`",
                       hint="enable protection first")
        return copy

    def op_shutdown(self, call, machine, site, timeout):
        self.need(site)
        copy = self.copy(machine, site)
        if not copy.exists():
            raise Fail("not_found", f"`{machine}` is not at `{site}`", machine=machine, site=site)
        if copy.state.get("power") == "off":
            return done(f"{machine} is already off at {site}")
        copy.state["power"] = "off"
        copy.save()
        return outcome(f"{machine} shut down at {site}")

    def op_start(self, call, machine, site, nics, timeout):
        self.need(site)
        copy = self.live(machine, site)
        if copy.state.get("power") == "on":
            return done(f"{machine} already runs at {site}")
        copy.state.update(power="on", nics=nics)
        copy.save()
        return outcome(f"{machine} started at {site}")

    def op_sync(self, call, machine, mode, final_sync, **op):
        src, dst = op["from"], op["to"]
        self.need(src, dst)
        source = self.live(machine, src)
        if final_sync and source.state.get("power") != "off":
            raise Fail("failed", f"a final sync needs `{machine}` off at `{src}`", hint="shut it down first")
        target = self.copy(machine, dst)
        if not target.exists():
            # A site that never had the machine (alternate location): a copy, not yet protected.
            target.state = {"role": "replica", "from": src, "points": [], "power": "off", "nics": [],
                            "source_generation": source.state["generation"]}
        elif target.state["role"] != "replica" or target.state.get("from") != src:
            if self.active(machine) == dst:
                raise Fail("failed", f"`{machine}` is live at `{dst}`")
            target.state.update(role="replica", **{"from": src})
        moved = self.transfer(source, target, mode == "full", call)
        if moved == 0 and mode != "full":
            return done(f"{dst} already holds {machine}'s data")
        return outcome(f"synced {moved} bytes {src} → {dst} ({mode})", bytes_transferred=moved)

    def op_failover(self, call, machine, point, nics, prefer_synced=False, **op):
        src, dst = op["from"], op["to"]
        self.need(dst)
        target = self.copy(machine, dst)
        if target.exists() and target.state["role"] == "live" and target.state.get("failed_over_from") == src \
                and self.active(machine) == dst:
            return done(f"{machine} is already live at {dst}")
        target = self.replica(machine, dst, src)
        if not target.state.get("consistent", True):
            raise Fail("verification", f"the copy at `{dst}` is inconsistent (a transfer was interrupted)",
                       hint="sync again before failing over")
        source = self.copy(machine, src) if self.reachable(src) else None
        synced = self.synced(machine, source, target) if (point is None or prefer_synced) else None
        if point is None and synced is not True:
            raise Fail("failed", f"the copy at `{dst}` is behind `{src}`: {synced}",
                       hint="shut the machine down and sync it (final) first, or fail over from a point")
        loss = None
        if synced is True:
            point = None
        else:
            chosen = target.point(point)
            self.head_on(target, point)
            until = now() if source else parse_iso(target.state.get("last_sync", chosen)["time"])
            loss = {"time": ms(until - parse_iso(chosen["time"]))}
        generation = max(target.state.get("source_generation", 0),
                         source.state.get("generation", 0) if source and source.exists() else 0) + 1
        target.state.update(role="live", generation=generation, power="off", nics=nics, commit_pending=True,
                            failed_over_at=iso(now()), failed_over_from=src, point=point, consistent=True)
        target.state.pop("protected", None)
        target.save()
        if source and source.exists():
            source.state.update(role="stale", power="off")
            source.state.pop("replicating_to", None)
            source.save()
        what = f"point {point}" if point else "the final sync"
        return outcome(f"{machine} failed over to {dst} from {what}", point=point, data_loss=loss or {"time": 0, "bytes": 0})

    def synced(self, machine, source, target):
        """True when the target holds exactly the source's last data, or why not."""
        last = target.state.get("last_sync") or {}
        if source is None or not source.exists():
            return True if last.get("final") else "the source is dark and no final sync completed"
        if source.state.get("power") != "off":
            return "the source still runs"
        if not last.get("final"):
            return "no final sync since it was shut down"
        if self.verify:
            for disk in source.disks():
                if not os.path.exists(target.disk(disk)) or not self.qemu.same(source.disk(disk), target.disk(disk)):
                    return f"disk {disk} differs"
        return True

    def op_commit(self, call, machine, site):
        self.need(site)
        copy = self.live(machine, site)
        if not copy.state.get("commit_pending"):
            return done(f"nothing to commit for {machine} at {site}")
        self.flatten(copy)
        copy.state.update(commit_pending=False)
        copy.state.pop("failed_over_at", None)
        copy.save()
        return outcome(f"committed {machine} at {site}")

    def op_change_point(self, call, machine, site, point):
        self.need(site)
        copy = self.live(machine, site)
        if not copy.state.get("commit_pending"):
            raise Fail("failed", f"the failover of `{machine}` is committed; its points are gone")
        if copy.state.get("point") == point:
            return done(f"{machine} already holds point {point}", point=point)
        if copy.state.get("power") != "off":
            raise Fail("failed", f"`{machine}` must be off at `{site}` to change its point")
        chosen = copy.point(point)
        self.head_on(copy, point)
        copy.state["point"] = point
        copy.save()
        loss = {"time": ms(parse_iso(copy.state["failed_over_at"]) - parse_iso(chosen["time"]))}
        return outcome(f"{machine} now holds point {point}", point=point, data_loss=loss)

    def op_revert(self, call, machine, **op):
        src, dst = op["from"], op["to"]
        self.need(src, dst)
        old = self.copy(machine, dst)
        current = self.copy(machine, src)
        if self.active(machine) == dst and not (current.exists() and current.state.get("commit_pending")):
            return done(f"{machine} is live at {dst} again")
        current = self.live(machine, src)
        if not current.state.get("commit_pending") or current.state.get("failed_over_from") != dst:
            raise Fail("failed", f"`{machine}` has no failover from `{dst}` to undo")
        old.state.update(role="live", generation=current.state["generation"] + 1, power="off",
                         replicating_to=src)
        old.save()
        self.head_on(current, None)
        current.state = {"role": "replica", "from": dst, "protected": True, "points": current.points(),
                         "power": "off", "nics": [], "consistent": True, "source_generation": old.state["generation"]}
        current.save()
        return outcome(f"{machine} is live at {dst} again; the copy at {src} is a replica")

    def op_reprotect(self, call, machine, **op):
        src, dst = op["from"], op["to"]
        self.need(src, dst)
        source = self.live(machine, src)
        if source.state.get("commit_pending"):
            raise Fail("failed", f"the failover of `{machine}` is not committed", hint="commit it first")
        target = self.copy(machine, dst)
        if self.replicates(target, src):
            return done(f"{machine} already replicates {src} → {dst}")
        if not target.exists():
            target.state = {}
        # The old copy's disks standalone first (they may be layered on its points), then the
        # points of an older protection go: this one starts its own.
        for disk in target.disks():
            if self.qemu.info(target.disk(disk)).get("backing-filename"):
                self.flatten(target)
                break
        for name in os.listdir(target.dir) if os.path.isdir(target.dir) else []:
            if "@p" in name:
                os.remove(target.file(name))
        target.state.update(role="replica", protected=True, points=[], power="off", nics=[],
                            source_generation=source.state["generation"], **{"from": src})
        target.state.pop("commit_pending", None)
        moved, point = self.protect(source, target, False, call)
        return outcome(f"reprotected {src} → {dst}: {moved} bytes of changed clusters", bytes_transferred=moved,
                       point=point)

    def op_create_test_copy(self, call, machine, site, point, nics, drill):
        self.need(site)
        safe_name("drill", drill)
        copy = self.copy(machine, site)
        if drill in copy.drills():
            return done(f"drill {drill} already has its copy of {machine} at {site}")
        if not copy.exists():
            raise Fail("not_found", f"`{machine}` has no copy at `{site}`", machine=machine, site=site)
        copy.point(point)
        for disk in copy.disks():
            self.qemu.overlay(copy.disk(disk, f"@drill-{drill}"), copy.disk(disk, f"@p{point}"))
        copy.state.setdefault("drills", {})[drill] = {"point": point, "power": "on", "nics": nics}
        copy.save()
        return outcome(f"test copy of {machine} from point {point} runs at {site} for {drill}", point=point)

    def op_remove_test_copy(self, call, machine, site, drill):
        self.need(site)
        safe_name("drill", drill)
        copy = self.copy(machine, site)
        if drill not in copy.drills():
            return done(f"drill {drill} has no copy of {machine} at {site}")
        for name in os.listdir(copy.dir):
            if name.endswith(f"@drill-{drill}.qcow2"):
                os.remove(copy.file(name))
        (copy.state.get("drills") or {}).pop(drill, None)
        copy.save()
        return outcome(f"removed drill {drill}'s copy of {machine} at {site}")

    # -- claims: owner.json beside each copy ---------------------------------------------------------

    def foreign(self, me):
        found = []
        for machine in self.machines:
            for _, copy in self.copies(machine):
                owner = read_json(copy.file("owner.json"))
                if owner and (owner["owner"]["lineage"], owner["owner"]["state"]) != (me["lineage"], me["state"]):
                    found.append({"machine": machine, "owner": owner["owner"], "since": owner["since"]})
                    break
        return found

    def claims(self, params, call):
        return self.foreign(params["me"])

    def claim(self, params, call):
        me = params["me"]
        taken = self.foreign(me)
        if taken:
            first = taken[0]
            raise Fail("setup", f"`{first['machine']}` is managed by plan `{first['owner']['plan']}` "
                                f"(state at {first['owner']['state']})",
                       hint="one machine, one plan: remove it from the other plan first")
        for machine in self.machines:
            for _, copy in self.copies(machine):
                write_json(copy.file("owner.json"), {"owner": me, "since": iso(now())})
        return None

    # -- the conformance kit's hands on its own estate -------------------------------------------------

    def test_create(self, params, call):
        self.scratch = tempfile.mkdtemp(prefix="drplan-qcow2-kit-")
        for site in ("dc1", "dc2", "dc3"):
            self.sites[site] = os.path.join(self.scratch, site)
            os.makedirs(self.sites[site])
        for i in range(1, params["machines"] + 1):
            name = f"m{i}"
            self.machines[name] = name
            folder = os.path.join(self.sites["dc1"], name)
            os.makedirs(folder)
            for disk in ("os", "data"):
                self.qemu.run("create", "-q", "-f", "qcow2", os.path.join(folder, f"{disk}.qcow2"), "16M")
            self.test_write({"machine": name}, call)
        return {"capabilities": self.capabilities()}

    def test_write(self, params, call):
        """The guest writes: a new pattern at a new place of each disk of the live copy."""
        machine = params["machine"]
        copy = self.copy(machine, self.active(machine))
        with self.lock:
            self.writes += 1
            n = self.writes
        for disk in copy.disks():
            size = self.qemu.size(copy.disk(disk))
            offset = (n * 3 * 65536) % (size - 65536)
            subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -q -P {n % 250 + 1} {offset} 64k",
                            copy.disk(disk)], check=True, capture_output=True)
        return None

    def test_reachable(self, params, call):
        path = self.sites[params["site"]]
        if params["reachable"] and os.path.isdir(path + ".dark"):
            os.rename(path + ".dark", path)
        elif not params["reachable"] and os.path.isdir(path):
            os.rename(path, path + ".dark")
        return None

    def test_content(self, params, call):
        """A digest of what the guest sees on each disk of the copy at the site."""
        copy = self.copy(params["machine"], params["site"])
        return guest_digest(self.qemu, [(d, copy.disk(d)) for d in copy.disks()])


def guest_digest(qemu, disks):
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory(prefix="drplan-qcow2-") as tmp:
        for name, path in disks:
            raw = os.path.join(tmp, "disk.raw")
            qemu.run("convert", "-q", "-O", "raw", path, raw)
            digest.update(name.encode() + b"\0")
            with open(raw, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            os.remove(raw)
    return digest.hexdigest()


def outcome(summary, **fields):
    return dict(summary=summary, already_done=False, **{k: v for k, v in fields.items() if v is not None})


def done(summary, **fields):
    return dict(outcome(summary, **fields), already_done=True)


if __name__ == "__main__":
    serve(Estate())
