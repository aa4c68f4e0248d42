/* bench/sim/stats.c — the acknowledgement latency histogram: log-linear buckets (16 per
 * power of two, so a percentile is within ~3% of the truth), one per worker, merged after
 * the run. Recording is a couple of instructions; no allocation. */
#include "sim.h"

enum { SUB_BITS = 4, SUB_COUNT = 1 << SUB_BITS };

static uint32_t bucket_of(uint64_t v)
{
    if (v < SUB_COUNT) return (uint32_t)v;
    uint32_t e = 63u - (uint32_t)__builtin_clzll(v); /* >= SUB_BITS */
    uint32_t sub = (uint32_t)(v >> (e - SUB_BITS)) & (SUB_COUNT - 1);
    return (e - SUB_BITS + 1) * SUB_COUNT + sub;
}

/* Middle of the bucket's range. */
static uint64_t value_of(uint32_t b)
{
    if (b < SUB_COUNT) return b;
    uint32_t e = b / SUB_COUNT + SUB_BITS - 1;
    uint64_t sub = b % SUB_COUNT;
    uint64_t width = 1ULL << (e - SUB_BITS);
    uint64_t low = (SUB_COUNT + sub) << (e - SUB_BITS);
    return low + width / 2;
}

_Static_assert((64 - SUB_BITS + 1) * SUB_COUNT <= SIM_HIST_BUCKETS, "histogram covers u64");

void histogram_record(sim_histogram *h, uint64_t value)
{
    h->counts[bucket_of(value)]++;
    h->total++;
    if (value > h->max) h->max = value;
}

void histogram_merge(sim_histogram *into, const sim_histogram *from)
{
    for (uint32_t i = 0; i < SIM_HIST_BUCKETS; i++) into->counts[i] += from->counts[i];
    into->total += from->total;
    if (from->max > into->max) into->max = from->max;
}

uint64_t histogram_percentile(const sim_histogram *h, double p)
{
    if (!h->total) return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->total + 0.5);
    if (rank < 1) rank = 1;
    if (rank > h->total) rank = h->total;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < SIM_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = value_of(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}
