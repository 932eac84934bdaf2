#!/usr/bin/env python3
"""HF counterpart of bench_tokenizer.cpp: the same corpus, the same vocabulary, RoBERTa's
pipeline (RobertaTokenizerFast's backend tokenizer: byte-level BPE, RobertaProcessing, character
offsets). Runs bench_tokenizer first when given (--fiber BINARY; it writes the corpus), then
HF, and prints both and the ratio.

  /root/.cache/fiber-ref-venv/bin/python bench/bench_tokenizer_hf.py --fiber build-bench/bench/bench_tokenizer

Single thread: encode_batch with TOKENIZERS_PARALLELISM=false (all in Rust, no Python loop),
and a Python loop of encode() for reference. Batch: encode_batch with rayon's default threads
(one per logical CPU; RAYON_NUM_THREADS overrides). Best of --repeat runs.
"""
import argparse
import json
import os
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def best(repeat, fn):
    """Best wall time and best CPU time of this thread (without parallelism HF runs on it)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - t0)
    return min(wall), min(cpu)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", default="/tmp/fiber_tokenizer_corpus.txt")
    p.add_argument("--vocab", default=os.path.join(ROOT, "tests/data/text/vocab.json"))
    p.add_argument("--merges", default=os.path.join(ROOT, "tests/data/text/merges.txt"))
    p.add_argument("--fiber", help="path of bench_tokenizer, run first on the same corpus")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    fiber = None
    if args.fiber:
        out = subprocess.run([args.fiber, "--corpus", args.corpus, "--vocab", args.vocab, "--merges", args.merges,
                              "--repeat", str(args.repeat)], check=True, capture_output=True, text=True).stdout
        print(out, end="")
        fiber = json.loads(out.strip().splitlines()[-1])

    from transformers import RobertaTokenizerFast
    tok = RobertaTokenizerFast(args.vocab, args.merges).backend_tokenizer
    with open(args.corpus, encoding="utf-8") as f:
        docs = f.read().split("\n")
    if docs and docs[-1] == "":
        docs.pop()
    threads = os.cpu_count()

    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    tokens = sum(len(e.ids) for e in tok.encode_batch(docs))
    single, single_cpu = best(args.repeat, lambda: tok.encode_batch(docs))
    loop, loop_cpu = best(1, lambda: [tok.encode(d) for d in docs])
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    batch, _ = best(args.repeat, lambda: tok.encode_batch(docs))

    print(f"HF single thread (encode_batch, parallelism off): wall {single:8.3f} s {tokens / single:10.0f} tokens/s"
          f" | cpu {single_cpu:8.3f} s {tokens / single_cpu:10.0f} tokens/s")
    print(f"HF Python loop of encode()                      : wall {loop:8.3f} s {tokens / loop:10.0f} tokens/s"
          f" | cpu {loop_cpu:8.3f} s {tokens / loop_cpu:10.0f} tokens/s")
    print(f"HF encode_batch ({os.environ.get('RAYON_NUM_THREADS', threads)} rayon threads)             : "
          f"wall {batch:8.3f} s {tokens / batch:10.0f} tokens/s")
    if fiber:
        if fiber["tokens"] != tokens:
            raise SystemExit(f"token counts differ: fiber {fiber['tokens']}, HF {tokens}")
        print(f"ratio fiber/HF tokens per second: single thread {single / fiber['single_s']:.2f}x wall, "
              f"{single_cpu / fiber['single_cpu_s']:.2f}x cpu; batch {batch / fiber['batch_s']:.2f}x wall "
              f"(fiber {fiber['threads']} threads, HF {os.environ.get('RAYON_NUM_THREADS', threads)})")


if __name__ == "__main__":
    main()
