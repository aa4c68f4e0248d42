/* bench/micro/otrf_lines.h — the OTRF corpus as the detection benchmarks read it: every line
 * starting with '{' of every .zip under a directory (recursively, in name order), kept in
 * memory (the lines point into each entry's buffer, which stays allocated). Header-only:
 * every .c in bench/micro is a benchmark of its own. */
#ifndef MAMORI_BENCH_OTRF_LINES_H
#define MAMORI_BENCH_OTRF_LINES_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

struct lines {
    char **text;
    size_t *len;
    size_t count, cap, bytes;
};

static inline void lines_add(struct lines *l, char *s, size_t len)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 65536;
        l->text = realloc(l->text, l->cap * sizeof *l->text);
        l->len = realloc(l->len, l->cap * sizeof *l->len);
    }
    l->text[l->count] = s;
    l->len[l->count] = len;
    l->count++;
    l->bytes += len;
}

static inline void load_zip(struct lines *l, const char *path, size_t max)
{
    int zerr = 0;
    zip_t *zip = zip_open(path, ZIP_RDONLY, &zerr);
    if (!zip) return;
    const char *grep = getenv("BENCH_GREP");
    for (zip_int64_t i = 0; i < zip_get_num_entries(zip, 0) && l->count < max; i++) {
        zip_stat_t st;
        if (zip_stat_index(zip, (zip_uint64_t)i, 0, &st) != 0 || st.size == 0) continue;
        char *data = malloc(st.size + 1);
        zip_file_t *f = zip_fopen_index(zip, (zip_uint64_t)i, 0);
        zip_int64_t got = f ? zip_fread(f, data, st.size) : -1;
        if (f) zip_fclose(f);
        if (got != (zip_int64_t)st.size) {
            free(data);
            continue;
        }
        data[st.size] = '\0';
        for (char *line = data; *line && l->count < max;) {
            char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            if (len && line[len - 1] == '\r') len--;
            if (len > 1 && line[0] == '{' && (!grep || (line[len] = 0, strstr(line, grep)))) lines_add(l, line, len);
            line = nl ? nl + 1 : line + len;
        }
    }
    zip_close(zip);
}

static inline void walk_zips(struct lines *l, const char *dir, size_t max)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) return;
    for (int i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        struct stat st;
        if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && l->count < max) {
            size_t nlen = strlen(names[i]->d_name);
            if (S_ISDIR(st.st_mode)) walk_zips(l, path, max);
            else if (nlen > 4 && !strcmp(names[i]->d_name + nlen - 4, ".zip")) load_zip(l, path, max);
        }
        free(names[i]);
    }
    free(names);
}

/* The four OTRF recordings the parser and normalizer benchmarks read (a mix of Sysmon,
 * Security and PowerShell events), until max lines. 0, or -1 when none could be read. */
static inline int lines_load_sample(struct lines *l, size_t max)
{
    static const char *const zips[] = {
        "otrf/windows/lateral_movement/host/covenant_dcom_iertutil_dll_hijack.zip",
        "otrf/windows/lateral_movement/host/empire_psexec_dcerpc_tcp_svcctl.zip",
        "otrf/windows/credential_access/host/empire_mimikatz_extract_keys.zip",
        "otrf/windows/credential_access/host/cmd_lsass_memory_dumpert_syscalls.zip",
    };
    for (size_t z = 0; z < sizeof zips / sizeof zips[0] && l->count < max; z++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", MAMORI_DATA_DIR, zips[z]);
        size_t before = l->count;
        load_zip(l, path, max);
        if (l->count == before) fprintf(stderr, "no lines read from %s\n", path);
    }
    return l->count ? 0 : -1;
}

#endif
