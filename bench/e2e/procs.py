"""Processes and CPU accounting for bench/e2e/run.py: child processes stopped by PID only,
per-process and per-CPU CPU time, a sampler of where a process's threads ran, and loopback
helpers. Python stdlib only."""
import os
import platform
import re
import signal
import socket
import subprocess
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")

class Proc:
    """A child process with output to a log file; stopped by its PID only."""

    def __init__(self, argv, log_path, env=None):
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=10):
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def proc_cpu_seconds(pid):
    """utime+stime of the whole process (all threads, exited ones included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_times():
    """Per CPU from /proc/stat: (busy seconds, steal seconds). Busy excludes idle, iowait and
    steal (time the hypervisor gave to another guest)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+) (.*)", line)
            if m:
                v = [int(x) for x in m.group(2).split()]
                out[int(m.group(1))] = ((sum(v[:8]) - v[3] - v[4] - v[7]) / CLK_TCK, v[7] / CLK_TCK)
    return out


class CpuWatcher(threading.Thread):
    """Samples which CPUs the LB's threads run on (field 39 of /proc/PID/task/TID/stat), to
    catch threads the taskset did not reach (e.g. io_uring io-wq workers)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.stop_event = threading.Event()
        self.seen = {}  # comm -> set of CPUs where it was seen with new CPU time

    def run(self):
        last = {}
        first = True
        while not self.stop_event.wait(0.05):
            try:
                tids = os.listdir(f"/proc/{self.pid}/task")
            except OSError:
                return
            for tid in tids:
                try:
                    with open(f"/proc/{self.pid}/task/{tid}/stat") as f:
                        head, tail = f.read().rsplit(")", 1)
                except OSError:
                    continue
                comm = head.split("(", 1)[1]
                fields = tail.split()
                ticks = int(fields[11]) + int(fields[12])
                # A thread that appears after the first sample (an io-wq worker) counts from 0.
                if ticks != last.get(tid, ticks if first else 0):
                    self.seen.setdefault(re.sub(r"\d+$", "N", comm), set()).add(int(fields[36]))
                last[tid] = ticks
            first = False

    def finish(self):
        self.stop_event.set()
        self.join()
        return {k: sorted(v) for k, v in self.seen.items()}


def wait_quiet(cpus, quiet_max, budget):
    """On a shared machine, waits (at most about BUDGET seconds) until none of CPUS is busier
    than QUIET_MAX (0..1, steal included) while none of our load runs. Returns (seconds
    waited, the last busy share seen)."""
    waited = 0.0
    while True:
        t0 = cpu_times()
        time.sleep(0.3)
        t1 = cpu_times()
        busy = max(t1[c][0] - t0[c][0] + t1[c][1] - t0[c][1] for c in cpus) / 0.3
        if busy <= quiet_max or waited >= budget:
            return waited, busy
        time.sleep(0.5)
        waited += 0.8


def measure_phase(lb_pid, peer_pids, run, settle=0.2):
    """Runs RUN(), the load (it returns the load generator's JSON report, whose cpu_s is the
    generator's own CPU), and adds to that report what happened meanwhile: lb_cpu_s
    (utime+stime of LB_PID), gen_cpu_s (the generator + PEER_PIDS, e.g. the sink), per-CPU
    busy and steal seconds, phase_s (wall time) and lb_threads_cpus (CpuWatcher). The SETTLE
    seconds after the load count too: closing the last connections is part of the work."""
    watcher = CpuWatcher(lb_pid)
    watcher.start()
    t0 = time.monotonic()
    cpu0, times0 = proc_cpu_seconds(lb_pid), cpu_times()
    peers0 = sum(proc_cpu_seconds(p) for p in peer_pids)
    res = run()
    time.sleep(settle)
    cpu1, times1 = proc_cpu_seconds(lb_pid), cpu_times()
    peers1 = sum(proc_cpu_seconds(p) for p in peer_pids)
    res["lb_cpu_s"] = cpu1 - cpu0
    res["gen_cpu_s"] = res["cpu_s"] + peers1 - peers0
    res["cpu_busy_s"] = {str(c): times1[c][0] - times0[c][0] for c in times1}
    res["cpu_steal_s"] = {str(c): times1[c][1] - times0[c][1] for c in times1}
    res["phase_s"] = time.monotonic() - t0
    res["lb_threads_cpus"] = watcher.finish()
    return res


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def can_connect(addr):
    host, port = addr.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=0.2).close()
        return True
    except OSError:
        return False


def machine(haproxy):
    """What the numbers were measured on: kernel, CPU model and count, HAProxy and Python."""
    model = ""
    with open("/proc/cpuinfo") as f:
        m = re.search(r"model name\s*:\s*(.*)", f.read())
        model = m.group(1) if m else "?"
    hv = subprocess.run([haproxy, "-v"], capture_output=True).stdout.decode().splitlines()[0]
    return {"kernel": platform.release(), "cpu": model, "cpus": os.cpu_count(), "haproxy": hv,
            "python": platform.python_version()}
