#!/usr/bin/env python3
"""Generates a synthetic inbox for the benchmark: FILES files of ROWS rows each.

Keys overlap between files (each file updates part of the previous file's keys and adds new
ones), values look like real cluster inventories (leading zeros, decimals, empty cells, quoted
fields with commas), and one column appears only in later files, so the benchmark exercises
inserts, updates, unchanged rows and schema evolution. Deterministic for a given seed.
"""
import argparse
import os
import random


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="inbox folder to fill")
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows per file")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    regions = ["eu-west-1", "us-east-1", "ap-south-1", "sa-east-1", "eu-north-1"]
    owners = ["platform", "data, ops", "search", "payments", "ml-infra", ""]
    base_time = 1_700_000_000
    for f in range(args.files):
        name = os.path.join(args.out, f"inventory_{f:03d}.csv")
        first_key = f * args.rows // 2  # half of each file updates the previous file's keys
        cols = ["cluster_name", "region", "nodes", "zip", "cpu_cores", "mem_gb", "owner", "created", "price"]
        if f >= args.files // 2:
            cols.append("tier")
        with open(name, "w", newline="") as out:
            out.write(",".join(cols) + "\n")
            for i in range(args.rows):
                k = first_key + i
                row = [
                    f"cluster-{k:09d}",
                    regions[(k + f) % 5],
                    str(rng.randint(1, 512)),
                    f"{rng.randint(0, 99999):05d}",
                    str(rng.choice([2, 4, 8, 16, 32, 64])),
                    f"{rng.randint(1, 2048)}.{rng.randint(0, 99):02d}",
                    owners[k % 6],
                    f"2024-{1 + k % 12:02d}-{1 + k % 28:02d}T{k % 24:02d}:00:00Z",
                    "" if k % 17 == 0 else f"{rng.random() * 1000:.3f}",
                ]
                if "tier" in cols:
                    row.append(["gold", "silver", "bronze"][k % 3])
                out.write(",".join(f'"{v}"' if "," in v else v for v in row) + "\n")
        os.utime(name, (base_time + f, base_time + f))
        print(f"{name}: {os.path.getsize(name)} bytes")


if __name__ == "__main__":
    main()
