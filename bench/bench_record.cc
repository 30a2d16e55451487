// bench/bench_record.cc — RENC record seal and open, and raw AES-256-GCM, at
// 4 KiB, 16 KiB, 64 KiB and 1 MiB segments, on every AEAD backend built in.
//
// Names: <op>/<backend>/<bytes>, op one of record_seal, record_open,
// aead_seal, aead_open; backend "auto" (what the tool uses), "openssl",
// "ipsec-mb" (a named one is left out when it is what auto chose).  The aead rows are the cipher alone: the difference to the
// record rows is the record codec's own cost (word, nonce, checks).
//
// Opens decrypt in place, so they run over a batch of sealed copies (about
// 1 MiB) refilled with timing paused once all were opened; the pause costs
// are spread over the whole batch.  Times are CPU times, as openssl speed's.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "bench/shim.h"

namespace {

constexpr size_t kMaxSeg = size_t{1} << 20;
constexpr int64_t kSizes[] = {4 << 10, 16 << 10, 64 << 10, 1 << 20};

void Bytes(benchmark::State &state, size_t n, renc_bench_ctx *ctx)
{
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
    state.SetLabel(renc_bench_backend(ctx));
}

void Seal(benchmark::State &state, renc_bench_ctx *ctx, bool raw)
{
    const size_t n = static_cast<size_t>(state.range(0));
    for (auto _ : state) {
        int rc = raw ? renc_bench_aead_seal(ctx, n) : renc_bench_record_seal(ctx, n);
        if (rc != 0) {
            state.SkipWithError("seal failed");
            break;
        }
    }
    Bytes(state, n, ctx);
}

void Open(benchmark::State &state, renc_bench_ctx *ctx, bool raw)
{
    const size_t n = static_cast<size_t>(state.range(0));
    int count = 0, next = 0;
    for (auto _ : state) {
        if (next == count) {
            state.PauseTiming();
            count = renc_bench_open_fill(ctx, raw ? 1 : 0, n);
            next = 0;
            state.ResumeTiming();
            if (count <= 0) {
                state.SkipWithError("sealing the batch failed");
                break;
            }
        }
        if (renc_bench_open(ctx, next++) != 0) {
            state.SkipWithError("open failed: tag did not verify");
            break;
        }
    }
    Bytes(state, n, ctx);
}

}  // namespace

int main(int argc, char **argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    // Contexts live for the whole run (keys and buffers set up once).
    // "auto" first; a named backend only when it is not the one auto chose.
    std::string chosen;
    for (const char *backend : {"auto", "openssl", "ipsec-mb"}) {
        renc_bench_ctx *ctx = nullptr;
        if (renc_bench_ctx_new(&ctx, kMaxSeg, backend) != 0) {
            std::fprintf(stderr, "bench_record: backend %s not available, skipped\n", backend);
            continue;
        }
        if (chosen.empty()) {
            chosen = renc_bench_backend(ctx);
        } else if (chosen == renc_bench_backend(ctx)) {
            renc_bench_ctx_free(ctx);
            continue;
        }
        const std::string b = backend;
        struct Op {
            const char *name;
            void (*fn)(benchmark::State &, renc_bench_ctx *, bool);
            bool raw;
        };
        for (const Op &op : {Op{"record_seal", Seal, false}, Op{"record_open", Open, false},
                             Op{"aead_seal", Seal, true}, Op{"aead_open", Open, true}}) {
            auto *bm = benchmark::RegisterBenchmark((std::string(op.name) + "/" + b).c_str(),
                                                    op.fn, ctx, op.raw);
            for (int64_t n : kSizes)
                bm->Arg(n);
        }
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
