"""Helpers shared by the benchmark reference scripts in tools/bench (llm_reference.py,
sd_reference.py, gguf_reference.py, llava_reference.py): memory readings from
/proc/self/status, the thread count, logging to stderr, folder sizes, and the subprocess that
runs one measurement. Standard library only. The scripts run as `python tools/bench/SCRIPT.py`,
which puts this folder on sys.path, so a plain `import bench_common` finds it.
"""
import json
import os
import resource
import subprocess
import sys


def ru_maxrss_mb():
    """Peak RSS from getrusage in MiB (Linux reports KiB). Linux's ru_maxrss survives exec, so
    a process started by a large parent (such as the Rust bench) reports the parent's size."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb():
    """Peak RSS so far in MiB: VmHWM of /proc/self/status, which starts anew at exec; where
    that is missing or unreadable, ru_maxrss_mb()."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return ru_maxrss_mb()


def rss_now():
    """Current RSS split into anonymous and file-backed pages, in MiB (Linux only)."""
    try:
        with open("/proc/self/status") as f:
            d = {l.split(":")[0]: int(l.split()[1]) / 1024 for l in f
                 if l.startswith(("VmRSS", "RssAnon", "RssFile"))}
        return {"rss_mb": d.get("VmRSS"), "anon_mb": d.get("RssAnon"), "file_mb": d.get("RssFile")}
    except OSError:
        return None


def log(*a):
    """print to stderr, flushed (stdout carries only the JSON lines)."""
    print(*a, file=sys.stderr, flush=True)


def threads(args, fallback):
    """The thread count: --threads (args.threads) if not 0, else $ART_BENCH_THREADS if set and
    not 0, else fallback (each script passes its own)."""
    return args.threads or int(os.environ.get("ART_BENCH_THREADS", "0")) or fallback


def dir_bytes(path):
    """The total size of the files under path, in bytes."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def run_json_line(cmd, what):
    """Runs cmd (a fresh Python process, so each measurement has its own peak RSS) and returns
    the last JSON object line of its stdout; exits naming `what` if it failed or printed none."""
    log(f"bench: {what}: {' '.join(cmd)}")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    lines = [l for l in p.stdout.splitlines() if l.strip().startswith("{")]
    if p.returncode != 0 or not lines:
        sys.exit(f"bench: {what} failed (exit {p.returncode})")
    return json.loads(lines[-1])
