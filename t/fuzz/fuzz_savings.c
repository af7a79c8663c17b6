/* t/fuzz/fuzz_savings.c — fuzz target: the savings file parser and validator,
 * then everything that reads an accepted document (merge, rollups, history,
 * CSV), plus the /stats-history query parser on the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/savings_file/savings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const double now = 1714567890.0; /* fixed: runs must be reproducible */
    json_t *doc = NULL;
    char why[256];
    enum hr_sav_load_result r = hr_sav_parse((const char *)data, size, now, &doc, why, sizeof why);
    if (!doc) abort(); /* the parser always hands back something usable */
    if (r == HR_SAV_LOADED && hr_sav_doc_validate(doc, why, sizeof why)) abort();
    struct hr_sav_delta d = {.hour = 1714564800, .provider = "openai", .model = "gpt-4o", .t = {1, 10, 100, 0.5, 1.0}};
    hr_sav_apply(doc, &d, 1, now, 1, 8, 8);
    if (hr_sav_doc_validate(doc, why, sizeof why)) abort(); /* merging keeps the document valid */
    for (int m = 0; m < 3; m++) {
        struct hr_sav_query q = {(enum hr_sav_mode)m, 0, HR_SAV_HISTORY};
        json_decref(hr_sav_history_json(doc, &q, now));
        for (int s = 0; s < 5; s++) {
            size_t len;
            q.series = (enum hr_sav_series)s;
            free(hr_sav_history_csv(doc, &q, now, &len));
        }
    }
    json_decref(doc);

    char *query = malloc(size + 1);
    if (!query) return 0;
    memcpy(query, data, size);
    query[size] = '\0';
    struct hr_sav_query q;
    json_t *err = NULL;
    if (hr_sav_query_parse(query, &q, &err)) {
        char *text = json_dumps(err, 0);
        if (!text) abort(); /* the 400 body must always serialise */
        free(text);
    }
    json_decref(err);
    free(query);
    return 0;
}
