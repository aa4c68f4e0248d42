/* bench/sim/replay.c — replays recorded events (OTRF/Mordor zips of NXLog JSON lines,
 * plain NDJSON, or JSON documents and arrays) with their times rebased to now.
 *
 * Loading indexes every line once: where its time fields are (@timestamp, TimeCreated,
 * EventTime, EventReceivedTime, UtcTime, CreationUtcTime, PreviousCreationUtcTime; top
 * level), their values and their exact text style. Recordings mix clocks — NXLog's
 * EventTime is the host's local time while Sysmon's UtcTime is UTC — so each field's
 * offset from the file's primary clock is measured on a line holding both, rounded to
 * 15 minutes (a time zone, not a lag), and removed. Sending then copies the line and
 * rewrites each time in place: time = recorded - zone offset + shift, where the shift puts
 * the first line an agent sends from a file (its "segment") at now, or just after the
 * last time it sent, so gaps are preserved and time never runs backwards. */
#include "sim.h"

#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#define MOD "sim"
#define ZONE_ROUND_US (15LL * 60 * 1000000)
#define ENTRY_BYTES_MAX (1ULL << 31) /* one recording inside a zip */

enum replay_clock { CLK_TIMESTAMP = 0, CLK_TIMECREATED, CLK_EVENTTIME, CLK_RECEIVED, CLK_UTCTIME, CLK_FILETIME, CLOCKS };

static const struct {
    const char *key;
    uint8_t clock;
} time_fields[] = {
    {"@timestamp", CLK_TIMESTAMP}, {"TimeCreated", CLK_TIMECREATED}, {"EventTime", CLK_EVENTTIME},
    {"EventReceivedTime", CLK_RECEIVED}, {"UtcTime", CLK_UTCTIME}, {"CreationUtcTime", CLK_FILETIME},
    {"PreviousCreationUtcTime", CLK_FILETIME},
};
/* Which clock anchors a file: the first of these its first timed line has. */
static const uint8_t primary_order[] = {CLK_TIMESTAMP, CLK_TIMECREATED, CLK_EVENTTIME, CLK_UTCTIME, CLK_RECEIVED};

typedef struct time_span {
    uint32_t offset; /* in the line */
    uint8_t len;
    uint8_t clock;
    uint8_t frac_digits;
    char separator; /* 'T' or ' ' */
    bool zulu;
    int64_t us;
} time_span;

typedef struct replay_line {
    uint64_t offset; /* in its file's text */
    uint32_t len;
    uint32_t file;
    uint64_t first_span;
    uint8_t span_count;
    int64_t ts_us; /* in the file's primary clock: anchors segments */
} replay_line;

typedef struct replay_file {
    char *name;
    char *text; /* owned */
    size_t len;
    int64_t zone_us[CLOCKS]; /* subtract to move a clock onto the primary one */
} replay_file;

struct replay_corpus {
    replay_file *files;
    uint32_t file_count;
    replay_line *lines;
    uint64_t line_count, line_cap;
    time_span *spans;
    uint64_t span_count, span_cap;
    uint64_t skipped_invalid, skipped_large, skipped_untimed;
};

/* ---- loading ---- */

static char *read_plain(const char *path, size_t *len_out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        LOG_ERROR(MOD, "replay %s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    buf b;
    buf_init(&b);
    char chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) buf_append(&b, chunk, n);
    bool error = ferror(fp);
    fclose(fp);
    if (error) {
        LOG_ERROR(MOD, "replay %s: read error", path);
        buf_fini(&b);
        return NULL;
    }
    buf_cstr(&b);
    *len_out = b.len;
    return b.data;
}

static bool style_of(const char *s, size_t len, time_span *span)
{
    if (len < 19 || len > 40) return false;
    span->separator = s[10];
    size_t i = 19;
    span->frac_digits = 0;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            span->frac_digits++;
        }
    }
    span->zulu = i < len && s[i] == 'Z';
    if (span->zulu) i++;
    /* A numeric offset (+02:00) is left as recorded: rare, and not worth a formatter. */
    return i == len && (span->separator == 'T' || span->separator == ' ') && span->frac_digits <= 9;
}

static void push_span(replay_corpus *c, const time_span *s)
{
    if (c->span_count == c->span_cap) {
        c->span_cap = c->span_cap ? c->span_cap * 2 : 4096;
        c->spans = mamori_xrealloc(c->spans, c->span_cap * sizeof *c->spans);
    }
    c->spans[c->span_count++] = *s;
}

static replay_line *push_line(replay_corpus *c)
{
    if (c->line_count == c->line_cap) {
        c->line_cap = c->line_cap ? c->line_cap * 2 : 4096;
        c->lines = mamori_xrealloc(c->lines, c->line_cap * sizeof *c->lines);
    }
    replay_line *l = &c->lines[c->line_count++];
    memset(l, 0, sizeof *l);
    return l;
}

/* One NDJSON line of file `fi`: valid JSON object or skipped. */
static void index_line(replay_corpus *c, json_parser *p, arena *a, uint32_t fi, size_t offset, size_t len)
{
    const char *text = c->files[fi].text + offset;
    if (len > SIM_EVENT_BYTES_MAX) {
        c->skipped_large++;
        return;
    }
    arena_reset(a);
    json_value v;
    json_error err;
    if (json_parse(p, a, text, len, &v, &err) != 0 || v.type != JSON_OBJECT) {
        c->skipped_invalid++;
        return;
    }
    replay_line *l = push_line(c);
    l->offset = offset;
    l->len = (uint32_t)len;
    l->file = fi;
    l->first_span = c->span_count;
    for (uint32_t m = 0; m < v.len && l->span_count < UINT8_MAX; m++) {
        const json_member *mem = &v.members[m];
        if (mem->value.type != JSON_STRING) continue;
        for (size_t k = 0; k < MAMORI_ARRAY_LEN(time_fields); k++) {
            if (mem->key_len != strlen(time_fields[k].key) || memcmp(mem->key, time_fields[k].key, mem->key_len) != 0)
                continue;
            const char *s = mem->value.str;
            /* Zero-copy strings point into the line; escaped ones cannot be times anyway. */
            if (s < text || s + mem->value.len > text + len) break;
            time_span span = {.offset = (uint32_t)(s - text), .len = (uint8_t)mem->value.len,
                              .clock = time_fields[k].clock};
            if (style_of(s, mem->value.len, &span) && clock_parse_rfc3339(s, mem->value.len, &span.us) == 0) {
                push_span(c, &span);
                l->span_count++;
            }
            break;
        }
    }
}

/* JSON documents that are not one object per line (pretty-printed, concatenated, arrays):
 * rewritten compactly, one object per line, then indexed like NDJSON. */
static int compact_documents(replay_file *f, json_parser *p, arena *a)
{
    buf out;
    buf_init(&out);
    size_t pos = 0;
    for (;;) {
        arena_reset(a);
        json_value v;
        json_error err;
        int rc = json_parse_next(p, a, f->text, f->len, &pos, &v, &err);
        if (rc == -ENODATA) break;
        if (rc) {
            LOG_WARN(MOD, "replay %s: byte %zu: %s: rest of the file skipped", f->name, err.offset, err.msg);
            break;
        }
        const json_value *items = &v;
        uint32_t n = 1;
        if (v.type == JSON_ARRAY) {
            items = v.items;
            n = v.len;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (items[i].type != JSON_OBJECT) continue;
            json_write_value(&out, &items[i]);
            buf_putc(&out, '\n');
        }
    }
    free(f->text);
    buf_cstr(&out);
    f->text = out.data;
    f->len = out.len;
    return 0;
}

static void measure_zones(replay_corpus *c, uint32_t fi, uint64_t first, uint64_t end)
{
    replay_file *f = &c->files[fi];
    int primary = -1;
    bool known[CLOCKS] = {false};
    for (uint64_t li = first; li < end && primary < 0; li++) {
        const replay_line *l = &c->lines[li];
        for (size_t k = 0; k < MAMORI_ARRAY_LEN(primary_order) && primary < 0; k++)
            for (uint8_t s = 0; s < l->span_count; s++)
                if (c->spans[l->first_span + s].clock == primary_order[k]) primary = primary_order[k];
    }
    if (primary < 0) return; /* nothing timed: nothing to rebase */
    known[primary] = true;
    for (uint64_t li = first; li < end; li++) {
        const replay_line *l = &c->lines[li];
        const time_span *ps = NULL;
        for (uint8_t s = 0; s < l->span_count; s++)
            if (c->spans[l->first_span + s].clock == primary) ps = &c->spans[l->first_span + s];
        if (!ps) continue;
        for (uint8_t s = 0; s < l->span_count; s++) {
            const time_span *sp = &c->spans[l->first_span + s];
            if (known[sp->clock] || sp->clock == CLK_FILETIME) continue;
            int64_t d = sp->us - ps->us;
            int64_t zones = (d >= 0 ? d + ZONE_ROUND_US / 2 : d - ZONE_ROUND_US / 2) / ZONE_ROUND_US;
            f->zone_us[sp->clock] = zones * ZONE_ROUND_US;
            known[sp->clock] = true;
        }
    }
    /* File times (CreationUtcTime) are on Sysmon's UTC clock. */
    f->zone_us[CLK_FILETIME] = f->zone_us[CLK_UTCTIME];
    /* Each line's anchor time, on the primary clock; untimed lines inherit. */
    int64_t last = 0;
    bool have_last = false;
    for (uint64_t li = first; li < end; li++) {
        replay_line *l = &c->lines[li];
        const time_span *best = NULL;
        for (uint8_t s = 0; s < l->span_count; s++) {
            const time_span *sp = &c->spans[l->first_span + s];
            if (sp->clock == CLK_FILETIME) continue;
            if (!best || sp->clock == primary) best = sp;
        }
        if (best) {
            last = best->us - f->zone_us[best->clock];
            have_last = true;
        } else if (!have_last) {
            c->skipped_untimed++;
        }
        l->ts_us = last;
    }
}

static void add_file(replay_corpus *c, json_parser *p, arena *a, char *name, char *text, size_t len)
{
    uint32_t fi = c->file_count++;
    c->files = mamori_xrealloc(c->files, c->file_count * sizeof *c->files);
    replay_file *f = &c->files[fi];
    memset(f, 0, sizeof *f);
    f->name = name;
    f->text = text;
    f->len = len;
    size_t start = 0;
    while (start < len && (text[start] == ' ' || text[start] == '\n' || text[start] == '\r' || text[start] == '\t'))
        start++;
    /* A document rather than lines: an array, or a first line that is not a whole object. */
    bool documents = start < len && text[start] == '[';
    if (!documents && start < len) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t first_len = nl ? (size_t)(nl - (text + start)) : len - start;
        json_value v;
        json_error err;
        arena_reset(a);
        documents = json_parse(p, a, text + start, first_len, &v, &err) != 0;
    }
    if (documents) compact_documents(f, p, a);
    uint64_t first_line = c->line_count;
    size_t pos = 0;
    while (pos < f->len) {
        const char *nl = memchr(f->text + pos, '\n', f->len - pos);
        size_t end = nl ? (size_t)(nl - f->text) : f->len;
        size_t l_end = end;
        while (l_end > pos && (f->text[l_end - 1] == '\r' || f->text[l_end - 1] == ' ')) l_end--;
        size_t l_start = pos;
        while (l_start < l_end && (f->text[l_start] == ' ' || f->text[l_start] == '\t')) l_start++;
        if (l_end > l_start) index_line(c, p, a, fi, l_start, l_end - l_start);
        pos = end + 1;
    }
    measure_zones(c, fi, first_line, c->line_count);
    LOG_INFO(MOD, "replay %s: %llu events", name, (unsigned long long)(c->line_count - first_line));
}

static bool zip_entry_wanted(const char *name)
{
    size_t n = strlen(name);
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    return n && name[n - 1] != '/' && !strstr(name, "__MACOSX/") && base[0] != '.';
}

static int load_zip(replay_corpus *c, json_parser *p, arena *a, const char *path)
{
    int zerr = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY, &zerr);
    if (!z) {
        zip_error_t e;
        zip_error_init_with_code(&e, zerr);
        LOG_WARN(MOD, "replay %s: cannot open zip: %s: skipped", path, zip_error_strerror(&e));
        zip_error_fini(&e);
        return -EINVAL;
    }
    zip_int64_t entries = zip_get_num_entries(z, 0);
    int rc = 0;
    for (zip_int64_t i = 0; i < entries; i++) {
        zip_stat_t st;
        if (zip_stat_index(z, (zip_uint64_t)i, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) || !st.name) continue;
        if (!zip_entry_wanted(st.name)) continue;
        if (st.size > ENTRY_BYTES_MAX) {
            LOG_WARN(MOD, "replay %s: %s: %llu bytes, too large: skipped", path, st.name, (unsigned long long)st.size);
            continue;
        }
        zip_file_t *zf = zip_fopen_index(z, (zip_uint64_t)i, 0);
        if (!zf) {
            LOG_WARN(MOD, "replay %s: %s: %s: skipped", path, st.name, zip_strerror(z));
            continue;
        }
        char *text = mamori_xmalloc((size_t)st.size + 1);
        zip_int64_t got = zip_fread(zf, text, st.size);
        zip_fclose(zf);
        if (got < 0 || (zip_uint64_t)got != st.size) {
            LOG_WARN(MOD, "replay %s: %s: short read: skipped", path, st.name);
            free(text);
            continue;
        }
        text[st.size] = '\0';
        char name[1024];
        snprintf(name, sizeof name, "%s:%s", path, st.name);
        add_file(c, p, a, mamori_xstrdup(name), text, (size_t)st.size);
    }
    zip_close(z);
    return rc;
}

int replay_load(const char *const *files, size_t count, replay_corpus **out)
{
    replay_corpus *c = mamori_xcalloc(1, sizeof *c);
    json_parser *p = json_parser_create();
    arena a;
    arena_init(&a, 256 * 1024);
    /* An unreadable recording (a corpus may hold a truncated zip) is reported and skipped;
     * the replay fails only if nothing at all could be read. */
    int rc = 0;
    size_t unreadable = 0;
    for (size_t i = 0; i < count; i++) {
        size_t n = strlen(files[i]);
        if (n > 4 && strcasecmp(files[i] + n - 4, ".zip") == 0) {
            if (load_zip(c, p, &a, files[i]) != 0) unreadable++;
        } else {
            size_t len;
            char *text = read_plain(files[i], &len);
            if (!text) unreadable++;
            else add_file(c, p, &a, mamori_xstrdup(files[i]), text, len);
        }
    }
    if (unreadable) LOG_WARN(MOD, "replay: %zu of %zu file(s) could not be read and were skipped", unreadable, count);
    arena_fini(&a);
    json_parser_destroy(p);
    if (c->skipped_invalid || c->skipped_large)
        LOG_WARN(MOD, "replay: skipped %llu lines that are not JSON objects and %llu longer than %u bytes",
                 (unsigned long long)c->skipped_invalid, (unsigned long long)c->skipped_large, SIM_EVENT_BYTES_MAX);
    if (!rc && c->line_count == 0) {
        LOG_ERROR(MOD, "replay: no events found in %zu file(s)", count);
        rc = -EINVAL;
    }
    if (rc) {
        replay_destroy(c);
        return rc;
    }
    *out = c;
    return 0;
}

void replay_destroy(replay_corpus *c)
{
    if (!c) return;
    for (uint32_t i = 0; i < c->file_count; i++) {
        free(c->files[i].name);
        free(c->files[i].text);
    }
    free(c->files);
    free(c->lines);
    free(c->spans);
    free(c);
}

uint64_t replay_line_count(const replay_corpus *c) { return c->line_count; }

/* ---- sending ---- */

void replay_cursor_init(replay_cursor *cur, const replay_corpus *c, uint64_t start_line)
{
    memset(cur, 0, sizeof *cur);
    cur->line = c->line_count ? start_line % c->line_count : 0;
}

static void put_time(buf *out, int64_t us, const time_span *style)
{
    char ts[32];
    clock_format_rfc3339(us, ts); /* YYYY-MM-DDTHH:MM:SS.ffffffZ */
    ts[10] = style->separator;
    buf_append(out, ts, 19);
    if (style->frac_digits) {
        buf_putc(out, '.');
        uint8_t digits = MAMORI_MIN(style->frac_digits, (uint8_t)6);
        buf_append(out, ts + 20, digits);
        for (uint8_t i = digits; i < style->frac_digits; i++) buf_putc(out, '0');
    }
    if (style->zulu) buf_putc(out, 'Z');
}

void replay_render(const replay_corpus *c, replay_cursor *cur, bool rebase, int64_t now_us, buf *out)
{
    const replay_line *l = &c->lines[cur->line];
    const replay_file *f = &c->files[l->file];
    const char *text = f->text + l->offset;
    if (!rebase || !l->span_count) {
        buf_append(out, text, l->len);
    } else {
        if (!cur->started || cur->file != l->file) {
            /* A new segment starts now, or just after the last time sent. */
            int64_t anchor = MAMORI_MAX(now_us, cur->last_us + 1);
            cur->shift_us = anchor - l->ts_us;
            cur->file = l->file;
            cur->started = true;
        }
        uint32_t at = 0;
        for (uint8_t s = 0; s < l->span_count; s++) {
            const time_span *sp = &c->spans[l->first_span + s];
            buf_append(out, text + at, sp->offset - at);
            int64_t us = sp->us - f->zone_us[sp->clock] + cur->shift_us;
            put_time(out, us, sp);
            if (sp->clock != CLK_FILETIME && us > cur->last_us) cur->last_us = us;
            at = sp->offset + sp->len;
        }
        buf_append(out, text + at, l->len - at);
    }
    if (++cur->line == c->line_count) {
        cur->line = 0;
        cur->started = false; /* wrapping around: a new segment, later in time */
    }
}
