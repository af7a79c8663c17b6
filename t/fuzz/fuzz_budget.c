/* t/fuzz/fuzz_budget.c — fuzz target: budget.json as found on disk. Byte 0
 * picks the period; the rest is the file. Opening never fails on content
 * (a damaged file is moved aside), and what the budget then writes must
 * open again with the same spend: load, add, flush, reload round-trips. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "budget.h"
#include "log.h"

static char dir[] = "/tmp/hr-fuzz-budget-XXXXXX";
static char path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!mkdtemp(dir)) abort();
    snprintf(path, sizeof path, "%s/budget.json", dir);
    setenv("HEADROOM_TEST_NOW", "1714567890", 1); /* fixed: a file can name the current period */
    hr_log_set_level(HR_LOG_ERROR);
    return 0;
}

static void clear_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d) closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    enum hr_budget_period period = (enum hr_budget_period)(data[0] % 4);
    clear_dir();
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    struct hr_budget *b;
    char err[512];
    if (hr_budget_open(10.0, period, path, &b, err, sizeof err)) abort(); /* content never stops the daemon */
    struct hr_budget_state st;
    hr_budget_get(b, 1714567890.0, &st);
    if (!(st.spent_usd >= 0) || !isfinite(st.spent_usd)) abort();
    hr_budget_add(b, 0.25, 1714567890.0);
    json_decref(hr_budget_json(b, 1714567890.0, 0));
    if (hr_budget_flush(b)) abort();
    double spent = st.spent_usd + 0.25;
    hr_budget_close(b);
    if (hr_budget_open(10.0, period, path, &b, err, sizeof err)) abort();
    hr_budget_get(b, 1714567890.0, &st);
    if (fabs(st.spent_usd - spent) > 1e-9 * (1 + spent)) abort(); /* what we wrote reads back */
    hr_budget_close(b);
    return 0;
}
