/* detect/eval_plan.c — the order in which a candidate rule's condition is asked, worked out
 * once per rule set: the kids of every AND and OR that only read bits first (order_kids). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Whether evaluating a node may search a value or look a field up (a pattern left to a lazy
 * answer, a null/exists test, a direct predicate, anywhere under it) rather than only read
 * bits the walk set (a trigger pattern, a keyword, any pattern of a rule without triggers). */
static bool node_searches(const detect_ruleset *rs, const bool *searches, uint32_t node)
{
    const struct enode *n = &rs->nodes[node];
    switch (n->kind) {
    case EN_PRED: {
        const struct rt_pred *p = &rs->preds[n->arg];
        if (p->kind != PRED_PATTERN) return true;
        return !(p->field == DETECT_NONE || p->trigger || rs->rules[p->rule].always);
    }
    case EN_NOT: return searches[n->arg];
    case EN_AND:
    case EN_OR:
        for (uint32_t i = 0; i < n->count; i++)
            if (searches[rs->kids[n->arg + i]]) return true;
        return false;
    default: return false;
    }
}

/* Puts the kids of every AND and OR that only read bits first, the others after them, each
 * in the rule's order: a side that reads bits and decides is asked before one that searches
 * (contains|all values of which one is scanned eagerly and is missing). In an AND, the
 * negations that search go last: `not filter` is usually true and decides nothing. Same
 * results: asking has no effect but the bits it caches. Ordering by a summed cost instead put
 * lazy filters before their selection and was 2-7% slower (docs/detection.md §10.23). Kids
 * are compiled before their parents (compile.c compile_node), so one pass in node order knows
 * every kid's class. */
void order_kids(detect_ruleset *rs)
{
    bool *searches = mamori_xmalloc((rs->node_count ? rs->node_count : 1) * sizeof *searches);
    for (uint32_t node = 0; node < rs->node_count; node++) {
        const struct enode *n = &rs->nodes[node];
        if (n->kind == EN_AND || n->kind == EN_OR) {
            uint32_t *k = rs->kids + n->arg, done = 0;
            for (uint32_t i = 0; i < n->count; i++) /* stable: bit readers to the front in order */
                if (!searches[k[i]]) {
                    uint32_t x = k[i];
                    memmove(k + done + 1, k + done, (i - done) * sizeof *k);
                    k[done++] = x;
                }
            if (n->kind == EN_AND) /* and searching negations (filters: usually true, they rarely decide) last */
                for (uint32_t i = done, last = n->count; i < last;) {
                    if (rs->nodes[k[i]].kind != EN_NOT) {
                        i++;
                        continue;
                    }
                    uint32_t x = k[i];
                    memmove(k + i, k + i + 1, (n->count - i - 1) * sizeof *k);
                    k[n->count - 1] = x;
                    last--;
                }
        }
        searches[node] = node_searches(rs, searches, node);
    }
    free(searches);
}
