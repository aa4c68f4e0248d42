/* Fuzz target: the JSON parser and writer — parse, and if it parses, write it back and
 * parse the output again: it must parse and re-serialize to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_parser *parser;
    if (!parser) parser = json_parser_create();
    arena a;
    arena_init(&a, 4096);
    json_value v;
    json_error err;
    if (json_parse(parser, &a, (const char *)data, size, &v, &err) == 0) {
        buf once, twice;
        buf_init(&once);
        buf_init(&twice);
        json_write_value(&once, &v);
        json_value again;
        if (json_parse(parser, &a, once.data ? once.data : "", once.len, &again, &err) != 0) abort();
        json_write_value(&twice, &again);
        if (once.len != twice.len || (once.len && memcmp(once.data, twice.data, once.len) != 0)) abort();
        buf_fini(&once);
        buf_fini(&twice);
    } else if (err.offset > size || !err.msg[0]) {
        abort(); /* an error always says where and what */
    }
    arena_fini(&a);
    return 0;
}
