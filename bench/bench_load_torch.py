#!/usr/bin/env python3
"""The torch side of bench_load: one torch.load of FILE in this fresh process.

    bench_load_torch.py MODE FILE TENSOR
      full      torch.load(FILE, mmap=False)
      mmap      torch.load(FILE, mmap=True)
      mmap_one  torch.load(FILE, mmap=True), then FILE[TENSOR].clone() (reads that tensor)

Prints "<wall seconds> <peak RSS MB> <CPU seconds> <RSS MB before the load>" (the import of
torch is not timed; its memory is the baseline). Run with the reference interpreter.
"""
import resource
import sys
import time

import torch


def rss_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024.0
    return -1.0


def cpu_seconds():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def main():
    mode, path, tensor = sys.argv[1], sys.argv[2], sys.argv[3]
    torch.set_num_threads(torch.get_num_threads())
    baseline = rss_mb("VmRSS:")
    cpu_start = cpu_seconds()
    start = time.perf_counter()
    state = torch.load(path, map_location="cpu", mmap=(mode != "full"), weights_only=True)
    if mode == "mmap_one":
        kept = state[tensor].clone()
        assert kept.numel() > 0
    elif mode == "full":
        assert len(state) > 0
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_start
    print(f"{seconds:.6f} {rss_mb('VmHWM:'):.1f} {cpu:.4f} {baseline:.1f}")


if __name__ == "__main__":
    main()
