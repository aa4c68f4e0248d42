/* Fuzz target: the query language — compile any bytes; a refusal must be a bad_query with
 * a position inside the text (or at its end) and a message; a query that compiles is
 * evaluated on a fixed event (no crash, no unbounded work). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "search/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char EVENT[] =
    "{\"destination\":{\"ip\":\"10.1.2.3\",\"port\":4444},\"event\":{\"category\":[\"process\"],\"type\":[\"start\"]},"
    "\"host\":{\"id\":\"h1\",\"ip\":[\"10.0.0.5\",\"fe80::1\"]},\"process\":{\"command_line\":\"powershell -enc AAAA\","
    "\"name\":\"powershell.exe\",\"pid\":4242}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_parser *parser;
    static arena a;
    static json_value root;
    static eval_ctx ev;
    if (!parser) {
        parser = json_parser_create();
        arena_init(&a, 4096);
        json_error jerr;
        if (json_parse(parser, &a, EVENT, sizeof EVENT - 1, &root, &jerr) != 0) abort();
        eval_ctx_init(&ev);
    }
    search_query *q = NULL;
    search_error err;
    int rc = search_compile((const char *)data, size, &q, &err);
    if (rc) {
        if (err.code != SEARCH_ERR_BAD_QUERY || err.position < 0 || (size_t)err.position > size || !err.message[0])
            abort();
        return 0;
    }
    if (q->is_sequence) {
        for (uint32_t i = 0; i < q->stage_count; i++) (void)eval_query(&ev, &q->stages[i], &root);
    } else {
        (void)eval_query(&ev, &q->filter, &root);
    }
    search_query_destroy(q);
    return 0;
}
