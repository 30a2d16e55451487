#!/usr/bin/env python3
"""How many workers, and how long, a migration takes: the calculation behind
docs/SCALING.md.  Every limit is a parameter; the defaults are the documented
defaults of a general-purpose v2 storage account and of a key vault's RSA-2048
software key, and this project's measured figures (docs/PERFORMANCE.md).

  scripts/scaling.py                       # 10 million blobs, 100 TB
  scripts/scaling.py --blobs 2e6 --tb 40 --vault-per-10s 2000   # an HSM key

For each job (rekey, rewrap by header block) it prints what each resource
would take alone, the binding one, and the workers that reach it."""
import argparse


def hours(s):
    return s / 3600.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blobs", type=float, default=10e6)
    ap.add_argument("--tb", type=float, default=100.0, help="terabytes (1e12 bytes) in all")
    ap.add_argument("--block-mib", type=float, default=4.0,
                    help="bytes a request moves (a ranged read, a block): MiB")
    ap.add_argument("--account-rps", type=float, default=20000,
                    help="requests per second a storage account takes (GPv2 default)")
    ap.add_argument("--ingress-gbps", type=float, default=25.0)
    ap.add_argument("--egress-gbps", type=float, default=50.0)
    ap.add_argument("--accounts", type=int, default=1, help="storage accounts the data is in")
    ap.add_argument("--vault-per-10s", type=float, default=4000,
                    help="wrap/unwrap a vault takes per 10 s (RSA-2048 software key)")
    ap.add_argument("--vaults", type=int, default=1,
                    help="vaults holding the old and new keys (one: both in one vault)")
    ap.add_argument("--share-dek", type=float, default=64,
                    help="blobs sealed under one new DEK (rekey --share-dek N)")
    ap.add_argument("--old-deks-per-blob", type=float, default=1.0,
                    help="distinct old DEKs a blob (1: each blob its own; less when shared)")
    ap.add_argument("--worker-mbps", type=float, default=200.0,
                    help="MB/s one worker moves through its pipeline and network")
    ap.add_argument("--worker-blobs-s", type=float, default=300.0,
                    help="small blobs a second one worker finishes (docs/PERFORMANCE.md, Azurite)")
    ap.add_argument("--journal-blobs-s", type=float, default=15180.0,
                    help="claims + notes a second the PostgreSQL journal took (4 workers, "
                         "docs/PERFORMANCE.md)")
    a = ap.parse_args()

    n, total = a.blobs, a.tb * 1e12
    per_blob = total / n
    blocks = max(1.0, per_blob / (a.block_mib * 2**20))
    rps = a.account_rps * a.accounts
    ingress = a.ingress_gbps * 1e9 / 8 * a.accounts
    egress = a.egress_gbps * 1e9 / 8 * a.accounts
    vault_rate = a.vault_per_10s / 10.0

    print(f"{n:,.0f} blobs, {a.tb:,.0f} TB: {per_blob / 1e6:,.1f} MB a blob on average, "
          f"{blocks:,.1f} blocks of {a.block_mib:g} MiB")
    jobs = {
        # rekey: read every byte, write every byte (blocks + a block list),
        # an unwrap per old DEK, a wrap per --share-dek blobs.
        "rekey": dict(requests=n * (blocks + blocks + 2), read=total, write=total,
                      unwraps=n * a.old_deks_per_blob, wraps=n / a.share_dek),
        # rewrap by header block: read the header, list the blocks, put the
        # new header block, commit the block list; an unwrap and a wrap per
        # distinct DEK.
        "rewrap": dict(requests=n * 4, read=n * 65536, write=n * 8192,
                       unwraps=n * a.old_deks_per_blob, wraps=n * a.old_deks_per_blob),
    }
    for name, j in jobs.items():
        # Vault requests: old and new keys in the same vault share its
        # limit; in two vaults they go on side by side.
        vault_reqs = j["unwraps"] + j["wraps"] if a.vaults == 1 else max(j["unwraps"], j["wraps"])
        bounds = {
            "storage requests": j["requests"] / rps,
            "storage ingress": j["write"] / ingress,
            "storage egress": j["read"] / egress,
            "key vault": vault_reqs / vault_rate,
            "journal": n / a.journal_blobs_s,
        }
        bind = max(bounds, key=bounds.get)
        wall = bounds[bind]
        # Workers: enough that their own rate is not what binds.
        by_bytes = (j["read"] + j["write"]) / 2 / wall / (a.worker_mbps * 1e6)
        by_blobs = n / wall / a.worker_blobs_s
        workers = max(1, int(max(by_bytes, by_blobs) + 0.999))
        print(f"\n{name}:")
        for k, v in bounds.items():
            print(f"  {k:<17} {hours(v):8.2f} h{'   <- binds' if k == bind else ''}")
        print(f"  wall time {hours(wall):.2f} h ({n / wall:,.0f} blobs/s, "
              f"{(j['read'] + j['write']) / wall / 1e9:.2f} GB/s moved) with {workers} workers "
              f"(each {a.worker_mbps:g} MB/s or {a.worker_blobs_s:g} blobs/s); the journal "
              f"runs at {100 * n / wall / a.journal_blobs_s:.1f}% of its measured rate")


if __name__ == "__main__":
    main()
