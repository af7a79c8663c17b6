/* t/fuzz/fuzz_conf_parse.c — libFuzzer target for the config syntax layer
 * (src/conf_parse.c): any bytes must give a tree or a located error, never a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf_parse.h"

/* A fixed environment, so runs are reproducible and ${SET}, ${EMPTY} and
 * ${UNSET} all take their own paths. */
static const char *fake_getenv(const char *name)
{
    if (strcmp(name, "SET") == 0)
        return "value with spaces ; { } # \" '";
    if (strcmp(name, "EMPTY") == 0)
        return "";
    return NULL;
}

/* Invariants the semantic layer relies on; abort() so the fuzzer reports. */
static void check_node(const struct hr_conf_node *n, int depth)
{
    /* depth counts the root as 0, so a block at nesting level 8 belongs to a
     * node at depth 8 and its children sit at depth 9. */
    if ((n->has_block && depth > HR_CONF_MAX_DEPTH) || n->n_args > HR_CONF_MAX_ARGS)
        abort();
    if (depth > 0 && (!n->name || n->line < 1 || n->col < 1))
        abort();
    if (n->n_children && !n->has_block)
        abort();
    for (size_t i = 0; i < n->n_args; i++)
        if (!n->args[i] || n->arg_lines[i] < n->line)
            abort();
    for (size_t i = 0; i < n->n_children; i++)
        check_node(&n->children[i], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hr_conf_doc *doc = NULL;
    char err[512];
    int r;

    r = hr_conf_parse_string("fuzz.conf", (const char *)data, size, fake_getenv,
                             &doc, err, sizeof err);
    if (r == 0) {
        if (!doc)
            abort();
        check_node(&doc->root, 0);
        hr_conf_doc_free(doc);
    } else if (doc || strncmp(err, "fuzz.conf:", 10) != 0) {
        abort();
    }
    return 0;
}
