/* cli_doctor.c — `headroom doctor`: hr_validate_setup, one line per check
 * and a fix under each problem; exit 1 when the setup is not valid. */
#include "cli.h"
#include "cli_util.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: headroom doctor [-c FILE] [--json]\n"
                 "\n"
                 "Checks a setup without starting headroomd: the config parses, every plugin loads with a\n"
                 "compatible ABI and valid settings, the state root is writable, the price and token tables\n"
                 "load, the upstream URLs are well-formed, and the listening address is free (or held by a\n"
                 "running headroomd). Prints each problem with its fix. Exit status 0 when valid, 1 when not.\n"
                 "\n"
                 "  -c, --config FILE  the config to check (default $HEADROOM_CONFIG, else built-in defaults)\n"
                 "  --json             {\"valid\", \"issues\", \"checks\"}\n");
}

int hr_cli_doctor(int argc, char **argv)
{
    struct cli_common o = {.cmd = "doctor", .config = getenv("HEADROOM_CONFIG")};
    for (int i = 1; i < argc; i++) {
        int r = cli_common_option(&o, argc, argv, &i);
        if (r < 0) return HR_EXIT_USAGE;
        if (r) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return HR_EXIT_OK;
        }
        fprintf(stderr, "headroom doctor: unknown argument '%s'; see 'headroom doctor --help'\n", argv[i]);
        return HR_EXIT_USAGE;
    }
    char *text = hr_validate_setup(o.config);
    if (!text) return cli_fail(&o, hr_last_status());
    json_t *v = json_loads(text, 0, NULL);
    int valid = json_is_true(json_object_get(v, "valid"));
    if (o.json) {
        cli_print_json_text(text);
    } else {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(v, "checks"), i, c) {
            int ok = json_is_true(json_object_get(c, "ok")), warn = json_is_true(json_object_get(c, "warning"));
            printf("%-4s %-12s %s\n", warn ? "warn" : ok ? "ok" : "FAIL", json_string_value(json_object_get(c, "check")),
                   json_string_value(json_object_get(c, "message")));
            if (!ok || warn) printf("     %-12s fix: %s\n", "", json_string_value(json_object_get(c, "fix")));
        }
        size_t n = json_array_size(json_object_get(v, "issues")), warnings = 0;
        json_array_foreach(json_object_get(v, "checks"), i, c) warnings += json_is_true(json_object_get(c, "warning"));
        if (valid && warnings) printf("setup is valid, with %zu warning%s\n", warnings, warnings == 1 ? "" : "s");
        else if (valid) printf("setup is valid\n");
        else printf("%zu problem%s found\n", n, n == 1 ? "" : "s");
    }
    json_decref(v);
    hr_free(text);
    return valid ? HR_EXIT_OK : HR_EXIT_RUNTIME;
}
